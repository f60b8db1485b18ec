"""Run reports: tables, Pareto fronts and plots."""

from prunesearch.report._build import annotate, build_report, report_run

__all__ = ["annotate", "build_report", "report_run"]
