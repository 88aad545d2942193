"""Courses and lessons: the catalog, enrolments, lesson tests and their completion."""
