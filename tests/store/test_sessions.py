"""The sessions table: created, found while valid, deleted, swept when expired."""

from studio.store import sessions


def test_a_session_is_found_until_it_expires_or_is_deleted(store):
    sessions.create(store, "h-alice", "alice", created_at="2030-01-01T00:00:00.000Z",
                    expires_at="2030-01-15T00:00:00.000Z")
    assert sessions.user_for(store, "h-alice", now="2030-01-02T00:00:00.000Z") == "alice"
    assert sessions.user_for(store, "h-alice", now="2030-01-15T00:00:00.001Z") is None  # expired
    assert sessions.user_for(store, "h-unknown", now="2030-01-02T00:00:00.000Z") is None
    assert sessions.delete(store, "h-alice") is True
    assert sessions.delete(store, "h-alice") is False
    assert sessions.user_for(store, "h-alice", now="2030-01-02T00:00:00.000Z") is None


def test_expired_rows_are_swept_and_removed_accounts_lose_theirs(store):
    for token_hash, user, expires in [("h1", "alice", "2030-01-02T00:00:00.000Z"),
                                      ("h2", "alice", "2030-02-01T00:00:00.000Z"),
                                      ("h3", "bob", "2030-02-01T00:00:00.000Z"),
                                      ("h4", "carol", "2030-02-01T00:00:00.000Z")]:
        sessions.create(store, token_hash, user, created_at="2030-01-01T00:00:00.000Z", expires_at=expires)
    assert sessions.sweep_expired(store, now="2030-01-10T00:00:00.000Z") == 1
    assert sessions.keep_only_users(store, {"alice"}) == 2  # bob's and carol's accounts are gone
    assert sessions.count(store) == 1
    assert sessions.keep_only_users(store, set()) == 1  # no accounts at all: no sessions
    assert sessions.count(store) == 0
