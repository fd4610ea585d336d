//! What every stage uses: diagnostics for the user's mistakes, and what the terminal shows.

pub mod console;
pub mod diagnostic;
pub mod exit;
pub mod parallel;
pub mod text;
