pub mod fake_entra;
pub mod fake_graph;
pub mod harness;
pub mod http;
pub mod mime;
pub mod openssl;
pub mod server;
pub mod smtp;
