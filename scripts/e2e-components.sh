#!/usr/bin/env bash
# Installs what the end-to-end tests need (placeholder until the collector build lands).
exit 0
