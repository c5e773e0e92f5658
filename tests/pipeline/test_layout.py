import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import UnsafeIdentifier
from pipeline.layout import (
    conflict_key,
    decode_component,
    encode_component,
    is_conflict_copy,
    segment_key,
)
from storage_backends.keys import validate_key

# Up to 19 characters always fit: even a 4-byte character encoded as %XX%XX%XX%XX is 12 bytes.
ids = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=19).filter(
    lambda s: s not in (".", "..")
)


@given(ids)
def test_encoding_is_reversible(value):
    assert decode_component(encode_component(value, what="x")) == value


@given(ids, ids)
def test_different_ids_never_share_a_component(a, b):
    if a != b:
        assert encode_component(a, what="x") != encode_component(b, what="x")


@given(ids, ids, st.sampled_from(["audio", "video", "screen_audio", "screen_video"]), ids)
def test_every_segment_key_passes_the_storage_key_rules(session, participant, kind, filename):
    key = segment_key(session, participant, kind, filename)
    assert validate_key(key) == key
    assert key.count("/") == 3


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_empty_and_dot_components_are_refused(bad):
    with pytest.raises(UnsafeIdentifier, match="cannot be used"):
        segment_key("s", bad, "audio", "f.webm")


def test_slashes_and_control_characters_are_encoded_not_dropped():
    assert (
        segment_key("s", "carol/guest", "audio", "a\\b\x00.webm")
        == "s/carol%2Fguest/audio/a%5Cb%00.webm"
    )


def test_conflict_key_keeps_the_extension_and_is_recognisable():
    key = conflict_key("s/p/audio/track.webm", "ab" * 32)
    assert key == "s/p/audio/track.conflict-abababababab.webm"
    assert is_conflict_copy(key)
    assert not is_conflict_copy("s/p/audio/track.webm")


def test_percent_and_spaces_are_encoded_so_decoding_is_unambiguous():
    assert segment_key("s", "50% off", "audio", "f.webm") == "s/50%25%20off/audio/f.webm"


def test_names_in_any_script_stay_readable():
    assert segment_key("s", "José Müller", "audio", "f.webm") == "s/José%20Müller/audio/f.webm"
    assert encode_component("参加者", what="participantId") == "参加者"


def test_lone_surrogates_and_overlong_ids_are_refused():
    with pytest.raises(UnsafeIdentifier, match="not valid Unicode"):
        encode_component("a\ud800", what="participantId")
    with pytest.raises(UnsafeIdentifier, match="too long"):
        encode_component("x" * 300, what="participantId")
