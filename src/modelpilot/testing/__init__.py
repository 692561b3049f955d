"""Test kits shipped with modelpilot: conformance suites and real test servers."""
