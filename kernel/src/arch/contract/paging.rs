//! The contract's `Paging` trait: address spaces: user page tables, mapping, and making written code visible to instruction fetch.

/// Address spaces: user page tables, mapping, and making written code visible to instruction fetch.
pub trait Paging {}
