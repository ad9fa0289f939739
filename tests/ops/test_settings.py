"""Settings come from the environment through typed readers that fail loudly."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from meeting_intel import env
from tests.support.startup import manage_check


@pytest.mark.parametrize(
    ("reader", "value", "args"),
    [
        (env.env_bool, "maybe", ()),
        (env.env_int, "three", (3,)),
        (env.env_float, "1.2.3", (60.0,)),
        (env.env_float_list, "0,5,soon", ([0.0],)),
        (env.env_float_list, "0,-5", ([0.0],)),
        (env.env_url, "not a url", ()),
    ],
)
def test_it_names_the_variable_of_a_malformed_value(monkeypatch, reader, value, args):
    monkeypatch.setenv("SOME_SETTING", value)
    with pytest.raises(ImproperlyConfigured, match="SOME_SETTING"):
        reader("SOME_SETTING", *args)


def test_it_reads_well_formed_values(monkeypatch):
    monkeypatch.setenv("A_BOOL", "yes")
    monkeypatch.setenv("A_LIST", "0, 5,300")
    assert env.env_bool("A_BOOL") is True
    assert env.env_float_list("A_LIST", []) == [0.0, 5.0, 300.0]
    assert env.env_int("UNSET_INT_SETTING", 7) == 7


def test_start_up_stops_on_a_malformed_setting_naming_it():
    result = manage_check(JOB_MAX_RETRIES="many")
    assert result.returncode != 0
    assert "JOB_MAX_RETRIES must be an integer" in result.stderr


def test_start_up_refuses_to_run_without_secret_key_outside_debug():
    result = manage_check(SECRET_KEY="", DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
