//! Checkers over client histories.
