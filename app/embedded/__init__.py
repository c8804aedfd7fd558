"""The embedded stack behind `meetrec up`: bundled Redis and S3 servers, and a process supervisor."""
