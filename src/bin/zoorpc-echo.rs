//! A provider of the tests' own `echo.v1.Echo` service (a user's service as zoorpc sees it), so
//! tests can run, kill and stop it in its own process.
fn main() {
    zoorpc::apps::echo::main();
}
