//! One definition for every code table that crosses the C ABI or names a metric label.
//!
//! [`code_enum!`] declares a fieldless enum with explicit numeric codes and a stable
//! name per value, and derives from that one list: `ALL` (in code order), `NAMES`, `as_str`,
//! `from_code`, `from_name`, `code` and `Display`. Adding a value is one line.

/// Declares a code enum; see the module docs.
///
/// ```ignore
/// code_enum! {
///     /// Docs.
///     #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
///     pub enum Outcome: u8 {
///         /// The call succeeded.
///         Success = 0 => "success",
///     }
/// }
/// ```
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[repr($repr)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $code, )+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$($name::$variant),+];

            /// Every value's name, in code order (as [`as_str`](Self::as_str) writes it).
            pub const NAMES: [&'static str; [$(stringify!($variant)),+].len()] = [$($text),+];

            /// The stable snake_case name, used in metric labels, policy files and logs.
            #[inline]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// Decodes the numeric code used across the C ABI; `None` for anything else
            /// (a value from C is never trusted to be a valid code).
            #[inline]
            pub const fn from_code(code: i64) -> Option<Self> {
                match code {
                    $( $code => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The value named `name` (as [`as_str`](Self::as_str) writes it).
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|value| value.as_str() == name)
            }

            /// The numeric code (C ABI).
            #[inline]
            pub const fn code(self) -> $repr {
                self as $repr
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use code_enum;
