"""Run reports: tables, Pareto fronts and plots."""

from prunesearch.report.build import annotate, build_report

__all__ = ["annotate", "build_report"]
