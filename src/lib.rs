//! zoorpc
