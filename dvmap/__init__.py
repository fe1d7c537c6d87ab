"""dvmap: DVMap's data pipeline — WVS-7 respondents to high-consensus archetype corpora and benchmarks."""

__version__ = "0.1.0"

#: Profile attributes in DVMap's vocabulary, in DVMap's column order.
ATTRIBUTES = (
    "Country",
    "Gender",
    "Marital Status",
    "Has Children",
    "Education Level",
    "Occupation",
    "Work Nature",
    "Religion",
    "Life Stage",
    "Income Bracket",
    "Common Language",
)

#: Category used for a missing demographic value.
NOT_ANSWERED = "Not Answered"
