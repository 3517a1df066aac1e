from mlops import docgen
from tests.conftest import REPO_ROOT


def test_configuration_reference_matches_the_code():
    committed = (REPO_ROOT / "docs/configuration.md").read_text()
    assert committed == docgen.render(), (
        "docs/configuration.md is stale: python3 -m mlops.docgen > docs/configuration.md")


def test_every_key_is_documented():
    for _title, _intro, keys in docgen.SECTIONS:
        for name, key in keys.items():
            assert key.doc.strip(), name
