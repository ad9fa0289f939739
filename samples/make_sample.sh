#!/usr/bin/env bash
# Regenerates samples/standup.wav from samples/standup.txt with espeak-ng.
#
# Each "Speaker: line" of the script is spoken by that speaker's voice, turned
# into 16 kHz mono 16-bit PCM and followed by a pause, so the result is a
# 46 s three-person stand-up that the offline transcriber can split into
# turns (it starts a new turn at pauses of 0.7 s or more). Dither is off
# (sox -D), so the output is byte-for-byte reproducible for a given espeak-ng
# version; it is committed so a fresh checkout can process it without espeak-ng.
#
# Needs: espeak-ng, sox.   Usage: samples/make_sample.sh [OUTPUT.wav]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
script="$here/standup.txt"
out="${1:-$here/standup.wav}"
pause_seconds=0.9

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Distinct voice, pitch and speed per speaker: the local transcriber's
# speaker clustering relies on voices differing the way real people do.
# (espeak-ng ignores variants on plain en-gb, hence the en-gb-x-rp voice.)
voice_args() {
    case "$1" in
        Alice) echo "-v en-us+f3 -p 70 -s 155" ;;
        Bob) echo "-v en-us+m3 -p 30 -s 150" ;;
        Carol) echo "-v en-gb-x-rp+f2 -p 40 -s 160" ;;
        *) echo "unknown speaker '$1' in $script" >&2; exit 1 ;;
    esac
}

sox -D -n -r 16000 -c 1 -b 16 "$work/pause.wav" trim 0 "$pause_seconds"

parts=()
n=0
while IFS= read -r line || [ -n "$line" ]; do
    [ -z "$line" ] && continue
    speaker="${line%%:*}"
    text="${line#*: }"
    n=$((n + 1))
    # A separate assignment, so set -e stops at an unknown speaker.
    args="$(voice_args "$speaker")"
    # shellcheck disable=SC2086  # the voice arguments are deliberately word-split
    espeak-ng $args -w "$work/raw_$n.wav" "$text"
    sox -D "$work/raw_$n.wav" -r 16000 -c 1 -b 16 "$work/turn_$n.wav"
    parts+=("$work/turn_$n.wav" "$work/pause.wav")
done < "$script"

sox -D "$work/pause.wav" "${parts[@]}" -r 16000 -c 1 -b 16 "$out"
echo "wrote $out ($(soxi -D "$out") s, $n turns)"
