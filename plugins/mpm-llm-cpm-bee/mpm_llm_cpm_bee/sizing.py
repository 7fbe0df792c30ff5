"""Parameter counts and memory of each named size, computed from the architecture (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

from .config import ARCHS, CPMBeeArch

GIB = 1024**3


def parameter_count(arch: CPMBeeArch) -> dict[str, int]:
    """Parameters per part, exactly as the official key layout holds them."""
    d, inner = arch.dim_model, arch.num_heads * arch.dim_head
    attention = d + 3 * d * inner + inner * d  # layernorm_before_attention + q, k, v, out
    ffn = d + 2 * d * arch.dim_ff + arch.dim_ff * d  # layernorm_before_ffn + w_0, w_1, w_out
    parts = {
        "input_embedding": arch.vocab_size * d,
        "position_bias": (arch.position_bias_num_buckets + arch.position_bias_num_segment_buckets) * arch.num_heads,
        "attention": attention * len(arch.attention_layers),
        "ffn": ffn * len(arch.ffn_layers),
        "output_layernorm": d,
    }
    parts["total"] = sum(parts.values())
    return parts


@dataclass(frozen=True)
class MemoryEstimate:
    size: str
    parameters: int
    weights_bf16_gib: float
    weights_fp16_gib: float
    weights_fp32_gib: float
    kv_cache_per_1k_tokens_gib: float  # one sequence, 16-bit
    adam_training_gib: float  # fp32 weights + grads + Adam m, v (16 bytes/param)
    mixed_precision_adam_gib: float  # 16-bit weights + grads, fp32 master + m + v (16 bytes/param)

    def row(self) -> str:
        return (f"{self.size:<5} {self.parameters / 1e9:>7.3f}B {self.weights_bf16_gib:>9.2f} "
                f"{self.weights_fp16_gib:>9.2f} {self.weights_fp32_gib:>9.2f} "
                f"{self.kv_cache_per_1k_tokens_gib:>10.3f} {self.adam_training_gib:>10.1f}")


HEADER = (f"{'size':<5} {'params':>8} {'bf16 GiB':>9} {'fp16 GiB':>9} {'fp32 GiB':>9} "
          f"{'KV/1k GiB':>10} {'Adam GiB':>10}")


def memory_estimate(size: str, arch: CPMBeeArch | None = None) -> MemoryEstimate:
    """Weight memory in each precision (bf16 and fp16 both store 2 bytes per
    parameter; they differ in range, not size), the 16-bit KV cache of 1024
    tokens, and full fine-tuning state with Adam (activations not included)."""
    arch = arch or ARCHS[size]
    n = parameter_count(arch)["total"]
    kv = 2 * len(arch.attention_layers) * arch.num_heads * arch.dim_head * 2 * 1024
    return MemoryEstimate(
        size=size,
        parameters=n,
        weights_bf16_gib=2 * n / GIB,
        weights_fp16_gib=2 * n / GIB,
        weights_fp32_gib=4 * n / GIB,
        kv_cache_per_1k_tokens_gib=kv / GIB,
        adam_training_gib=16 * n / GIB,
        mixed_precision_adam_gib=16 * n / GIB,
    )


def memory_table(vocab_size_for_tiny: int | None = None) -> str:
    """The table of every named size (tiny with the built-in vocabulary size unless given)."""
    from .tokenizer import builtin_vocab

    rows = [HEADER]
    for size, arch in ARCHS.items():
        if arch.vocab_size == 0:
            arch = arch.replace(vocab_size=vocab_size_for_tiny or len(builtin_vocab()))
        rows.append(memory_estimate(size, arch).row())
    return "\n".join(rows)
