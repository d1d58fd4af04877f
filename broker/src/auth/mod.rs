//! Authentication and authorization: password hashing, what keeps login
//! storms from starving everyone else, personal access tokens, and the
//! permission rules every command is checked against.

pub mod guard;
mod password;
pub mod permissions;
pub mod tokens;

pub use password::{hash_password, random_password, verify_password};
pub use permissions::{Action, Permissions, ROOT_USER_ID};
