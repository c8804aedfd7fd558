"""The rrweb cloud dialect (`rrweb-cloud.txt`) under `/rrweb`: web replays ingested, searched, served."""
