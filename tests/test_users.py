"""Users file, password hashes, the brake on guessing, sessions (pure)."""

import pytest

from humidity.core import users


def test_users_are_written_with_argon2_hashes_and_read_back():
    known = users.with_user({}, "olivia", "operator", "correct horse battery")
    known = users.with_user(known, "victor", "viewer", "viewer-pass-123")
    text = users.dump_users(known)
    assert "correct horse battery" not in text and text.count("$argon2id$") == 2
    read = users.parse_users(text)
    assert {n: u.role for n, u in read.items()} == {"olivia": "operator", "victor": "viewer"}
    assert users.authenticate(read, "olivia", "correct horse battery").is_operator
    assert not users.authenticate(read, "victor", "viewer-pass-123").is_operator
    assert users.authenticate(read, "olivia", "wrong") is None
    assert users.authenticate(read, "nobody", "correct horse battery") is None
    assert "correct horse" not in repr(read["olivia"]) and "argon2" not in repr(read["olivia"])
    replaced = users.with_user(read, "olivia", "viewer", "a new password")
    assert users.authenticate(replaced, "olivia", "correct horse battery") is None


@pytest.mark.parametrize("text,why", [
    ('[users.a]\nrole = "admin"\npassword_hash = "$argon2id$x"\n', "role"),
    ('[users.a]\nrole = "viewer"\npassword_hash = "plain text"\n', "Argon2"),
    ('[users."a b"]\nrole = "viewer"\npassword_hash = "$argon2id$x"\n', "not a valid user"),
    ("users = 3", "tables expected"),
    ("[users.a", "not valid TOML"),
])
def test_a_bad_users_file_is_refused_with_the_reason(text, why):
    with pytest.raises(users.UsersError, match=why):
        users.parse_users(text)


def test_bad_names_roles_and_short_passwords_are_refused():
    for name, role, password in (("a b", "viewer", "long enough"), ("ok", "root", "long enough"),
                                 ("ok", "viewer", "short")):
        with pytest.raises(users.UsersError):
            users.with_user({}, name, role, password)


def test_five_failures_lock_a_name_for_longer_each_time_and_a_success_clears_it():
    throttle = users.Throttle()
    for _ in range(users.FAILURES_BEFORE_LOCK - 1):
        throttle.failed("olivia", 100.0)
    assert throttle.wait("olivia", 100.0) == 0
    throttle.failed("olivia", 100.0)
    assert throttle.wait("olivia", 100.0) == users.LOCK_SECONDS
    throttle.failed("olivia", 131.0)
    assert throttle.wait("olivia", 131.0) == 2 * users.LOCK_SECONDS
    for _ in range(30):
        throttle.failed("olivia", 200.0)
    assert throttle.wait("olivia", 200.0) == users.LOCK_MAX
    assert throttle.wait("victor", 200.0) == 0
    throttle.succeeded("olivia")
    assert throttle.wait("olivia", 200.0) == 0


def test_sessions_are_signed_shared_by_workers_with_one_secret_and_end_at_logout_or_expiry():
    user = users.User("olivia", "operator", "$argon2id$x")
    mine, other_worker, stranger = users.Sessions("s3cret"), users.Sessions("s3cret"), users.Sessions("other")
    token, session = mine.open(user, 0.0)
    assert session.name == "olivia" and len(session.csrf) == 64
    assert other_worker.get(token, 10.0) == session  # behind a proxy, any worker takes it
    assert stranger.get(token, 10.0) is None and users.Sessions().get(token, 10.0) is None
    assert mine.get(token, users.SESSION_LIFETIME + 1) is None
    name, expires, nonce, signature = token.split("|")
    assert mine.get(f"victor|{expires}|{nonce}|{signature}", 10.0) is None  # a changed name breaks the signature
    assert mine.get(f"{name}|{float(expires) * 9}|{nonce}|{signature}", 10.0) is None
    mine.close(token, 20.0)
    assert mine.get(token, 21.0) is None and mine.get(None, 21.0) is None and mine.get("a|b", 21.0) is None
