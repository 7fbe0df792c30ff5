"""Registration only: no torch or transformers here, so ``mpm plugins list`` stays fast."""

from mpm_framework.hookspecs import hookimpl

_P = "mpm_llm_llama"


@hookimpl
def mpm_register_llms(register):
    register("llama", f"{_P}.model:LlamaLLM", config=f"{_P}.config:LlamaLLMConfig",
             aliases=["llama2", "llama3"],
             description="LLaMA family through transformers' LlamaForCausalLM")
    register("hf-causal-lm", f"{_P}.model:HFCausalLM", config=f"{_P}.config:HFCausalLMConfig",
             aliases=["hf", "hf-causal"],
             description="any Hugging Face causal LM (Qwen2, Mistral, BLOOM, ...) via AutoModelForCausalLM")
