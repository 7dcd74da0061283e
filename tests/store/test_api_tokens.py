"""The api_tokens table: a token works until it is revoked, and a revoked one stays listed."""

from studio.store import api_tokens, utcnow


def test_a_token_finds_its_user_until_revoked(store):
    api_tokens.create(store, id="tok_1", user="alice", token_hash="h1", label="ci", created_at=utcnow())
    assert api_tokens.user_for(store, "h1") == "alice"
    assert api_tokens.user_for(store, "h2") is None
    assert api_tokens.revoke(store, "tok_1") is True
    assert api_tokens.revoke(store, "tok_1") is False  # already revoked
    assert api_tokens.user_for(store, "h1") is None
    [listed] = api_tokens.all_(store)
    assert listed["label"] == "ci" and listed["revoked_at"] and "token_hash" not in listed
