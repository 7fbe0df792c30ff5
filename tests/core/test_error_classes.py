"""User-facing raises in the core are MPMError subclasses (printed without a
traceback) that still are the builtin they were (issue 18, item 5)."""

import pytest

from mpm_framework.errors import ConfigError, DataError, MPMError, PluginError


def test_error_classes_keep_their_builtin():
    assert issubclass(ConfigError, ValueError) and issubclass(ConfigError, MPMError)
    assert issubclass(DataError, ValueError) and issubclass(DataError, MPMError)
    assert issubclass(PluginError, TypeError) and issubclass(PluginError, MPMError)


def test_metrics_count_mismatch_is_a_data_error():
    from mpm_framework.evaluation.metrics import cider_d

    with pytest.raises(DataError, match="one list of references per hypothesis"):
        cider_d([["a"], ["b"]], [[["a"]]])


def test_registering_with_a_non_string_factory_is_a_plugin_error():
    from mpm_framework.plugins import _registrar

    with pytest.raises(PluginError, match="import string"):
        _registrar([], "vision", "p")("enc", object)


def test_unknown_registration_kind_is_a_config_error():
    from mpm_framework.registry import Registration, Registry

    with pytest.raises(ConfigError, match="Did you mean 'vision'"):
        Registry().add(Registration(kind="visoin", name="x", factory="m:x"))


def test_a_stage_without_a_name_is_a_config_error():
    from mpm_framework.training.stages import Stage, register_stage

    class Nameless(Stage):
        name = ""

    with pytest.raises(ConfigError, match="Nameless needs a name"):
        register_stage(Nameless())


def test_toy_lexicon_errors_name_the_fix():
    from mpm_framework.text.toy_lexicon import ToyLexicon

    with pytest.raises(ConfigError, match="segmentation"):
        ToyLexicon("xx", {}, (), segmentation="letters")
