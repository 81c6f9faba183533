//! [`with_setters!`]: the `with_*` builder methods of a configuration struct, one per
//! field, so every configuration can be built by a caller outside the crate although
//! the structs are `#[non_exhaustive]` (a new option is then not a breaking change).

/// Declares `pub fn with_FIELD(self, value) -> Self` for each listed field.
///
/// ```ignore
/// with_setters!(ChaosConfig { enabled: bool => with_enabled, seed: u64 => with_seed });
/// ```
macro_rules! with_setters {
    ($ty:ty { $( $field:ident : $fty:ty => $with:ident ),+ $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                #[must_use]
                pub fn $with(mut self, $field: $fty) -> Self {
                    self.$field = $field;
                    self
                }
            )+
        }
    };
}

pub(crate) use with_setters;
