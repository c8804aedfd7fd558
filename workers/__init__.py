"""RQ job functions (thin: take ids, call services), the worker subclass and the scheduler timetable."""
