//! Every container-like thing a resource will run.
