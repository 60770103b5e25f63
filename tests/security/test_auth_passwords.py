"""The password file's entries: plaintext as NanoMQ writes them, hashed as we recommend, and
the CLI that hashes one."""

import subprocess
import sys

import gevent
import pytest

from appliance.auth.passwords import PasswordTable, hash_password, parse_hashed
from appliance.config import ConfigError, load_config_text
from tests.conftest import ROOT


def test_plaintext_and_hashed_entries_accept_only_the_right_password():
    table = PasswordTable((("plain", "public"), ("hashed", hash_password("s3cret", iterations=1000))))
    assert table.check("plain", b"public") is True
    assert table.check("plain", b"publi") is False
    assert table.check("plain", None) is False
    assert table.check("hashed", b"s3cret") is True
    assert table.check("hashed", b"public") is False
    assert table.check("nobody", b"public") is None


def test_hashing_does_not_stop_other_greenlets():
    table = PasswordTable((("slow", hash_password("pw", iterations=300_000)),))
    ticks = []

    def ticker():
        for _ in range(5):
            ticks.append(1)
            gevent.sleep(0.001)

    worker = gevent.spawn(ticker)
    assert table.check("slow", b"pw") is True
    worker.join()
    assert len(ticks) == 5  # the ticker ran while PBKDF2 was computed in a thread


def test_hash_format_is_scheme_iterations_salt_digest():
    entry = hash_password("x", iterations=1234, salt=b"0123456789abcdef")
    scheme, iterations, salt, digest = entry.split("$")
    assert (scheme, iterations) == ("pbkdf2-sha256", "1234")
    assert parse_hashed(entry)[:2] == (1234, b"0123456789abcdef")


@pytest.mark.parametrize("entry", ["pbkdf2-sha256$x$c2FsdA$AAAA", "pbkdf2-sha256$1000$c2FsdA", "pbkdf2-sha256$1000$!!$AAAA"])
def test_malformed_hash_is_a_config_error_that_does_not_show_the_value(entry):
    text = f'auth {{ password {{ "admin": "{entry}" }} }}'
    with pytest.raises(ConfigError) as error:
        load_config_text(text, env={})
    assert "auth.password.admin: bad hashed password" in str(error.value)
    assert entry not in str(error.value)


def test_numeric_password_is_read_as_its_digits():
    config = load_config_text("auth { password { admin: 123456 } }", env={}).config
    assert PasswordTable(config.auth.passwords).check("admin", b"123456") is True


def test_passwords_are_not_in_the_config_repr():
    config = load_config_text('auth { password { admin: "hunter2-secret" } }', env={}).config
    assert "hunter2-secret" not in repr(config)


def test_cli_prints_a_line_the_password_file_accepts(tmp_path):
    result = subprocess.run([sys.executable, "-m", "appliance.auth", "hash", "admin", "--iterations", "1000"],
                            input="correct horse\n", capture_output=True, text=True, cwd=ROOT, check=True)
    line = result.stdout.strip()
    assert "correct horse" not in line
    (tmp_path / "pwd.conf").write_text(line + "\n")
    (tmp_path / "nanomq.conf").write_text('auth { password = {include "pwd.conf"} }\n')
    config = load_config_text((tmp_path / "nanomq.conf").read_text(), env={}, basedir=str(tmp_path)).config
    assert PasswordTable(config.auth.passwords).check("admin", b"correct horse") is True
