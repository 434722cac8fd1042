"""conftest.require: a missing requirement skips the test outside CI and fails it under CI=true."""
import pytest

from conftest import require, require_module, require_shared_data, running_under_ci


def test_only_ci_true_counts_as_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert running_under_ci()
    for value in ("", "false", "1", "TRUE"):
        monkeypatch.setenv("CI", value)
        assert not running_under_ci()
    monkeypatch.delenv("CI")
    assert not running_under_ci()


def test_missing_fails_under_ci_naming_what_and_how(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        require(False, "the program no-such-program-xyz", "scripts/setup.sh installs it")
    assert "no-such-program-xyz" in str(failed.value)
    assert "scripts/setup.sh installs it" in str(failed.value)
    with pytest.raises(pytest.fail.Exception, match="python3-no-such-module"):
        require_module("no_such_module_xyz", "python3-no-such-module")
    with pytest.raises(pytest.fail.Exception, match="/nowhere/stories260K.bin"):
        require_shared_data("/nowhere/stories260K.bin")


def test_missing_skips_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-such-program-xyz"):
        require(False, "the program no-such-program-xyz", "scripts/setup.sh installs it")


def test_present_goes_on(monkeypatch):
    for value in ("true", None):
        if value is None:
            monkeypatch.delenv("CI", raising=False)
        else:
            monkeypatch.setenv("CI", value)
        require(True, "anything", "anyhow")
        assert require_module("json", "python3").dumps([]) == "[]"
