//! Resource detection (placeholder; being written).
