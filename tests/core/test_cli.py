from click.testing import CliRunner

from mpm_framework.cli.main import cli


def test_show_config_with_overrides(tiny_components):
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "--vision", "tiny-vision",
                                      "run.lr=0.25", "show-config"])
    assert result.exit_code == 0, result.output
    assert "lr: 0.25" in result.output and "name: tiny-vision" in result.output


def test_user_mistakes_are_one_line_errors(tiny_components):
    result = CliRunner().invoke(cli, ["compose", "--llm", "tiny-llm", "run.lrr=1", "show-config"])
    assert result.exit_code == 1
    assert "Error: unknown config key 'run.lrr'. Did you mean 'run.lr'?" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["compose", "--llm", "lama", "show-config"])
    assert result.exit_code == 1 and "unknown llm 'lama'" in result.output


def test_plugins_list_json(tiny_components):
    import json

    result = CliRunner().invoke(cli, ["plugins", "list", "--json"])
    data = json.loads(result.output)
    names = {c["name"] for p in data["plugins"] for c in p["components"]}
    assert {"tiny-llm", "tiny-vision", "mlp2x_gelu", "en"} <= names
