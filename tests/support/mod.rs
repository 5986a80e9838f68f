pub mod fake_entra;
pub mod harness;
pub mod http;
