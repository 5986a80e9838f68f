//! Integration tests: the real `mailer` binary against strict loopback fakes, the real
//! gnome-keyring (scripts/with-keyring) and, for one login, real headless Chromium.

// The tests drive Unix tools (gnome-keyring, symlinks, node, msmtp).
#![cfg(unix)]

#[path = "../support/mod.rs"]
mod support;

mod app_only;
mod bad_input;
mod browser;
mod diagnosis;
mod disk;
mod doctor_checks;
mod fake_entra_selftest;
mod fake_google_selftest;
mod fake_graph_selftest;
mod faults;
mod google;
mod login;
mod output;
mod pacing;
mod properties;
mod secrets;
mod send;
mod server_selftest;
mod setup;
mod smtp_selftest;
mod tokens;
mod unattended;
mod warnings;
