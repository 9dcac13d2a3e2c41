//! Readers: recorded files to events. (Being written.)
