from mpm_framework.hookspecs import hookimpl

_M = "mpm_framework.connectors"


@hookimpl
def mpm_register_connectors(register):
    register("identity", f"{_M}.modules:IdentityConnector", config=f"{_M}.config:IdentityConfig",
             description="pass-through, for encoders that own their bridge")
    register("linear", f"{_M}.modules:MLPConnector", config=f"{_M}.config:LinearConfig",
             description="one linear layer (LLaVA-1)")
    register("mlp2x_gelu", f"{_M}.modules:MLPConnector", config=f"{_M}.config:MLPConfig",
             aliases=["mlp"], description="Linear-GELU-Linear (LLaVA-1.5, VisCPM mapping)")
    register("resampler", f"{_M}.modules:ResamplerConnector", config=f"{_M}.config:ResamplerConfig",
             description="learned queries with cross-attention (fixed token count)")
