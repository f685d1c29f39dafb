"""Tests of the review UI, its CLI commands and the HTML report."""
