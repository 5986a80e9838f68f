//! Integration tests: the real `mailer` binary against strict loopback fakes, the real
//! gnome-keyring (scripts/with-keyring) and, for one login, real headless Chromium.

#[path = "../support/mod.rs"]
mod support;

mod browser;
mod fake_entra_selftest;
mod login;
mod tokens;
