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

#: Default of data.required_attributes: respondents lacking any of these are dropped. No row of DVMap's released
#: dev and test splits has "Not Answered" in either, while every other attribute has some (see the README).
REQUIRED_ATTRIBUTES = ("Life Stage", "Income Bracket")

#: Category used for a missing demographic value.
NOT_ANSWERED = "Not Answered"
