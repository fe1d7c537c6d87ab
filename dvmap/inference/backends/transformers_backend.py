"""Batched generation with transformers (left padding), on CPU or GPU."""

from __future__ import annotations

from ...errors import DvmapError
from ..models import ModelSpec


class TransformersBackend:
    def __init__(self, path: str, spec: ModelSpec, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch, self.spec = torch, spec
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
            self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        except OSError as exc:
            raise DvmapError(f"{path}: not a loadable model directory ({exc})") from exc
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.device == "cpu":
            input_major_weights(self.model)

    def generate(self, conversations: list[list[dict]]) -> list[list[str | None]]:
        gen = self.spec.generation
        texts = [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True,
                                                    **self.spec.chat_template_kwargs) for c in conversations]
        batch = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        self.torch.manual_seed(gen.seed)
        greedy = gen.temperature == 0
        sampling = {"do_sample": False} if greedy else {"do_sample": True, "temperature": gen.temperature}
        per_item = 1 if greedy else gen.samples  # greedy samples are all the same: generate once, repeat
        with self.torch.inference_mode():
            out = self.model.generate(**batch, max_new_tokens=gen.max_new_tokens, num_return_sequences=per_item,
                                      pad_token_id=self.tokenizer.pad_token_id, **sampling)
        new = out[:, batch["input_ids"].shape[1]:]
        decoded = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        outputs = [decoded[i * per_item:(i + 1) * per_item] for i in range(len(conversations))]
        return [o * gen.samples if greedy else o for o in outputs]


def input_major_weights(model) -> None:
    """Store every ``nn.Linear`` weight input-major (the transpose made contiguous, viewed back as out x in).

    ``linear`` computes ``x @ W.T``; with W input-major, ``W.T`` is contiguous, and on CPU the fp32 GEMM for a
    few rows (batched decoding) runs about twice as fast as with PyTorch's default output-major weights; the
    values, and so the generated tokens, are unchanged. Tied weights stay tied (they share one Parameter).
    """
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.data = module.weight.data.t().contiguous().t()
