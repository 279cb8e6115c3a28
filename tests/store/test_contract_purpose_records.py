"""Contract, every adapter: purpose_records answers what get_subjects says about one purpose."""

from tests.store.drafts import append, draft


def test_purpose_records_match_the_subjects_records(store):
    append(store, "t1", "u1", draft("push"), draft("ads.v2-eu", "deny"))
    append(store, "t1", "u2", draft("sms"))
    append(store, "t2", "u3", draft("push", tenant_id="t2"))

    for purpose in ("push", "ads.v2-eu", "sms", "never"):
        expected = {sid: rec.purposes.get(purpose)
                    for sid, rec in store.get_subjects("t1", ["u1", "u2", "u3", "nobody"]).items()}
        assert store.purpose_records("t1", ["u1", "u2", "u3", "nobody", "u1"], purpose) == expected
    assert store.purpose_records("t1", ["u1"], "ads.v2-eu")["u1"].action == "deny"
    assert store.purpose_records("t1", ["u2"], "push") == {"u2": None}
