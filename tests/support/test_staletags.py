"""Which image tags count as stale: local test registries that no longer listen."""

from tests.support.staletags import keepers, stale_tags

ROWS = [
    "127.0.0.1:5001/ns/train:1.0 aaa",       # newest first, as `docker images` lists
    "127.0.0.1:5001/ns/train:ih-1 aaa",
    "127.0.0.1:5002/other/train:2.0 bbb",
    "localhost:5003/x/serve:1 ccc",
    "127.0.0.1:5004/ns/tiny:1 ddd",
    "mlops-base/python:3.11-bookworm eee",
    "registry.example:5000/ns/train:1 fff",  # not local: never touched
    "<none>:<none> ggg",
]


def test_only_tags_of_closed_local_ports_are_stale_and_each_port_is_asked_once():
    asked = []

    def listening(port):
        asked.append(port)
        return port == 5002

    stale = stale_tags(ROWS, listening)
    assert stale == [("127.0.0.1:5001/ns/train:1.0", "aaa", "train"),
                     ("127.0.0.1:5001/ns/train:ih-1", "aaa", "train"),
                     ("localhost:5003/x/serve:1", "ccc", "serve"),
                     ("127.0.0.1:5004/ns/tiny:1", "ddd", "tiny")]
    assert asked == [5001, 5002, 5003, 5004]


def test_the_newest_image_of_each_repository_component_is_kept():
    stale = stale_tags(ROWS, lambda port: False)
    assert keepers(stale, {"train", "serve", "evaluate"}) == {"train": "aaa", "serve": "ccc"}


def test_a_session_is_alone_only_when_no_other_holds_the_lock(tmp_path, monkeypatch):
    from tests.support.staletags import SessionLock

    monkeypatch.setattr(SessionLock, "PATH", tmp_path / "sessions.lock")
    first, second = SessionLock(), SessionLock()
    try:
        assert first.alone()
        first.share()
        assert not second.alone()  # the first session is running
        second.share()
        assert not first.alone() and not second.alone()
        first.close()
        assert second.alone()  # the last one left
    finally:
        second.close()
