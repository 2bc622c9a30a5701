# syntax=docker/dockerfile:1.7
# Cantus render: joins melody, chords and lyrics per piece; synthesises, mixes and engraves.
# FROM the Cantus base image plus what rendering needs from Debian: FluidSynth with a General
# MIDI SoundFont (audio), LilyPond (engraved lead sheets) with a CJK font for Mandarin lyrics
# (fonts-wqy-microhei), ffmpeg (its libopus and
# libmp3lame encode the Opus and MP3 files for a third of the CPU of libsndfile's) and eSpeak
# NG (the sung vocals' phones); the same list as DEBIAN_PACKAGES in the Makefile.
ARG BASE_IMAGE=cantus/base:0.1.0
FROM ${BASE_IMAGE}
USER 0
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libfluidsynth3 fluid-soundfont-gm timgm6mb-soundfont lilypond fonts-wqy-microhei ffmpeg \
       espeak-ng \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["python", "-m", "services.render"]
