"""Fixtures for the cpm-bee tests: a test vocabulary and the plugin registered
whether or not the distribution is installed."""

import pytest

from mpm_framework.testing import mpm_plugin, tiny_components  # noqa: F401


@pytest.fixture
def vocab_file(tmp_path):
    from mpm_llm_cpm_bee.testing import write_test_vocab

    return write_test_vocab(tmp_path / "vocab.txt")


@pytest.fixture
def tokenizer(vocab_file):
    from mpm_llm_cpm_bee.tokenizer import CPMBeeTokenizer

    return CPMBeeTokenizer.from_file(vocab_file)


@pytest.fixture
def tiny(vocab_file):
    from mpm_llm_cpm_bee.testing import tiny_cpm_bee

    return tiny_cpm_bee(vocab_file).eval()


@pytest.fixture
def cpm_bee_plugin(mpm_plugin):  # noqa: F811
    import mpm_llm_cpm_bee.plugin as plugin

    from mpm_framework.plugins import get_plugin_manager

    if not get_plugin_manager().is_registered(plugin):
        mpm_plugin(plugin, name="mpm-llm-cpm-bee-test")
    yield plugin
