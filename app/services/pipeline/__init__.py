"""Media in and out: capture leases and segments, pushed chunks, finalize, frames, the media timeline."""
