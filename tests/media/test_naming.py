from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pipeline.segment import started_at_from_filename

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KINDS = st.sampled_from(["audio", "video", "screen_audio", "screen_video"])
PARTICIPANTS = st.text(
    alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="_-"),
    min_size=1,
    max_size=40,
)
PLAUSIBLE_MS = st.integers(min_value=1_420_070_400_000, max_value=4_102_444_799_999)


def test_a_service_file_name_gives_its_start_time() -> None:
    name = "track_recording_ab12cd_video_1714555815250.webm"
    assert started_at_from_filename(name) == datetime(2024, 5, 1, 9, 30, 15, 250000, tzinfo=UTC)


@given(
    participant=PARTICIPANTS, kind=KINDS, millis=PLAUSIBLE_MS, ext=st.sampled_from(["webm", "mp4"])
)
def test_any_participant_id_and_kind_keep_the_exact_epoch(
    participant: str, kind: str, millis: int, ext: str
) -> None:
    name = f"track_recording_{participant}_{kind}_{millis}.{ext}"
    assert started_at_from_filename(name) == EPOCH + timedelta(milliseconds=millis)
    assert started_at_from_filename(f"sess/part/{kind}/{name}") == EPOCH + timedelta(
        milliseconds=millis
    )


@given(millis=st.integers(min_value=0, max_value=10**15))
def test_only_plausible_epochs_are_believed(millis: int) -> None:
    result = started_at_from_filename(f"track_recording_p_audio_{millis}.webm")
    if 1_420_070_400_000 <= millis < 4_102_444_800_000:
        assert result == EPOCH + timedelta(milliseconds=millis)
    else:
        assert result is None


@given(
    tail=st.text(max_size=20).filter(
        lambda t: not (t.isascii() and t.isdigit()) and not set(t) & set("_./")
    )
)
def test_a_non_numeric_last_field_gives_none(tail: str) -> None:
    assert started_at_from_filename(f"track_recording_p_audio_{tail}.webm") is None


def test_names_without_an_epoch_give_none() -> None:
    for name in ["", "recording.webm", "track_recording_p_audio_.webm", "track_p_audio_12.webm"]:
        assert started_at_from_filename(name) is None
