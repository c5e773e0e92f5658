import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.errors import UnsafeIdentifier
from pipeline.layout import (
    EXPORTS_DIR,
    MANIFEST_NAME,
    conflict_key,
    decode_component,
    encode_component,
    is_conflict_copy,
    is_reserved_component,
    manifest_key,
    reserved_component,
    segment_key,
    session_prefix,
)
from storage_backends.keys import INTERNAL_PREFIX, MAX_COMPONENT_BYTES, fit_name, validate_key

# Up to 19 characters always fit: even a 4-byte character encoded as %XX%XX%XX%XX is 12 bytes.
ids = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=19)
#: IDs a hostile client would pick: the tool's own names, dots, case variants.
tool_names = st.sampled_from(
    [
        ".",
        "..",
        MANIFEST_NAME,
        "MANIFEST.JSON",
        "Manifest.json",
        ".track-archive-locks",
        ".track-archive-tmp",
        ".Track-Archive",
        "@exports",
        "%exports",
        "%",
        ".hidden",
        "...",
    ]
)
hostile_ids = st.one_of(ids, tool_names, st.builds(lambda a, b: a + b, tool_names, ids))


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


def test_empty_components_are_refused():
    with pytest.raises(UnsafeIdentifier, match="participantId is empty"):
        segment_key("s", "", "audio", "f.webm")


@given(hostile_ids)
def test_no_id_reaches_the_tools_own_names(value):
    component = encode_component(value, what="x")
    assert decode_component(component) == value
    assert not component.startswith(".")  # storage's own and hidden names
    assert not is_reserved_component(component)  # the layout's own (exports)
    assert component.lower() != MANIFEST_NAME
    assert validate_key(component) == component


@given(hostile_ids, hostile_ids)
def test_a_participant_never_shares_a_key_with_the_manifest(session, participant):
    key = segment_key(session, participant, "audio", "f.webm")
    manifest = manifest_key(session)
    assert not key.lower().startswith(manifest.lower() + "/")
    assert key.startswith(session_prefix(session))


def test_ordinary_ids_keep_their_keys_and_tool_names_are_encoded():
    assert segment_key("sess-1", "alice", "audio", "t_1.webm") == "sess-1/alice/audio/t_1.webm"
    assert segment_key("a.b", "x.y", "video", "t.webm") == "a.b/x.y/video/t.webm"
    assert segment_key(".", "..", "audio", "f.webm") == "%2E/%2E./audio/f.webm"
    assert session_prefix(".track-archive-locks") == "%2Etrack-archive-locks/"
    assert encode_component("manifest.json", what="x") == "manifest%2Ejson"
    assert encode_component("@exports", what="x") == "@exports"
    assert encode_component("%exports", what="x") == "%25exports"


def test_reserved_components_are_the_tools_alone():
    assert reserved_component("exports") == EXPORTS_DIR == "%exports"
    assert is_reserved_component("%exports") and not is_reserved_component("%25exports")
    for bad in ("../x", "ab-looks-like-an-escape", "Exports"):
        with pytest.raises(ValueError, match="lower-case"):
            reserved_component(bad)


@given(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=300))
def test_every_name_derived_from_a_segment_key_fits_a_file_name(filename):
    try:
        key = segment_key("s", "p", "audio", filename)
    except UnsafeIdentifier:
        return  # too long even before deriving anything: refused with a clear message
    copy = conflict_key(key, "ab" * 32)
    assert validate_key(copy) == copy and is_conflict_copy(copy)
    assert len(copy.rsplit("/", 1)[1].encode()) <= MAX_COMPONENT_BYTES


@given(st.text(min_size=1, max_size=300), st.sampled_from([".reason.json", ".x" * 40]))
def test_fit_name_keeps_suffix_and_distinctness_within_the_limit(name, suffix):
    fitted = fit_name(name, suffix)
    assert fitted.endswith(suffix)
    assert len(fitted.encode("utf-8", "surrogatepass")) <= MAX_COMPONENT_BYTES
    if len((name + suffix).encode("utf-8", "surrogatepass")) <= MAX_COMPONENT_BYTES:
        assert fitted == name + suffix
    else:
        assert fit_name(name + "x", suffix) != fitted


def test_conflict_copies_of_long_names_are_shortened_not_refused():
    key = "s/p/audio/" + "x" * 250 + ".webm"
    copy = conflict_key(key, "cd" * 32)
    assert copy.endswith(".conflict-cdcdcdcdcdcd.webm") and validate_key(copy) == copy
    assert not copy.rsplit("/", 1)[1].startswith(INTERNAL_PREFIX)


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
        encode_component("x" * 234, what="participantId")
    assert encode_component("x" * 233, what="participantId") == "x" * 233
