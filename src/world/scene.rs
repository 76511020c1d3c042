//! The vocabulary of the shape world: shapes, object colors, backgrounds and scenes.

use rand::Rng;

use super::oracle::Claim;

/// An object shape. Circle, square and triangle are "seen" (used for training
/// prompts); cross and diamond are held out, like the paper's unseen objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// A filled disc inscribed in the box.
    Circle,
    /// The whole box.
    Square,
    /// An isosceles triangle pointing up, base along the bottom of the box.
    Triangle,
    /// A plus sign: two centred bars of thickness `CROSS_BAR` of the box side.
    Cross,
    /// A square rotated by 45 degrees, corners touching the box sides.
    Diamond,
}

impl Shape {
    /// Every shape, seen first.
    pub const ALL: [Shape; 5] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Cross,
        Shape::Diamond,
    ];
    /// The shapes used for training prompts.
    pub const SEEN: [Shape; 3] = [Shape::Circle, Shape::Square, Shape::Triangle];
    /// The held-out shapes.
    pub const UNSEEN: [Shape; 2] = [Shape::Cross, Shape::Diamond];

    /// Singular caption word, e.g. "circle".
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Cross => "cross",
            Shape::Diamond => "diamond",
        }
    }

    /// Plural caption word, e.g. "crosses".
    pub fn plural(self) -> &'static str {
        match self {
            Shape::Circle => "circles",
            Shape::Square => "squares",
            Shape::Triangle => "triangles",
            Shape::Cross => "crosses",
            Shape::Diamond => "diamonds",
        }
    }

    /// Parses a singular or plural name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Shape> {
        let name = name.trim().to_ascii_lowercase();
        Shape::ALL
            .into_iter()
            .find(|s| s.name() == name || s.plural() == name)
    }

    /// Whether the shape belongs to the training vocabulary.
    pub fn is_seen(self) -> bool {
        Shape::SEEN.contains(&self)
    }
}

/// An object color with a fixed RGB value, far from the other colors and
/// from every background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Color {
    /// (225, 35, 35)
    Red,
    /// (30, 170, 50)
    Green,
    /// (30, 60, 230)
    Blue,
    /// (235, 215, 30)
    Yellow,
    /// (140, 40, 200)
    Purple,
}

impl Color {
    /// Every object color.
    pub const ALL: [Color; 5] = [
        Color::Red,
        Color::Green,
        Color::Blue,
        Color::Yellow,
        Color::Purple,
    ];

    /// Caption word, e.g. "red".
    pub fn name(self) -> &'static str {
        match self {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
            Color::Yellow => "yellow",
            Color::Purple => "purple",
        }
    }

    /// Parses a name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Color> {
        let name = name.trim().to_ascii_lowercase();
        Color::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The nominal RGB value.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Color::Red => [225, 35, 35],
            Color::Green => [30, 170, 50],
            Color::Blue => [30, 60, 230],
            Color::Yellow => [235, 215, 30],
            Color::Purple => [140, 40, 200],
        }
    }
}

/// A flat background color.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Background {
    /// (245, 245, 245)
    White,
    /// (15, 15, 15)
    Black,
    /// (128, 128, 128)
    Gray,
}

impl Background {
    /// Every background.
    pub const ALL: [Background; 3] = [Background::White, Background::Black, Background::Gray];

    /// Caption word, e.g. "white".
    pub fn name(self) -> &'static str {
        match self {
            Background::White => "white",
            Background::Black => "black",
            Background::Gray => "gray",
        }
    }

    /// Parses a name (case-insensitive; "grey" is accepted too).
    pub fn from_name(name: &str) -> Option<Background> {
        let name = name.trim().to_ascii_lowercase();
        if name == "grey" {
            return Some(Background::Gray);
        }
        Background::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The nominal RGB value.
    pub fn rgb(self) -> [u8; 3] {
        match self {
            Background::White => [245, 245, 245],
            Background::Black => [15, 15, 15],
            Background::Gray => [128, 128, 128],
        }
    }
}

/// Smallest number of objects in a scene.
pub const MIN_COUNT: u32 = 1;
/// Largest number of objects in a scene.
pub const MAX_COUNT: u32 = 4;

/// What an image shows: `count` objects of one shape and color on a flat background.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scene {
    /// The shape of every object.
    pub shape: Shape,
    /// Number of objects, `MIN_COUNT..=MAX_COUNT`.
    pub count: u32,
    /// The color of every object.
    pub color: Color,
    /// The background.
    pub background: Background,
}

impl Scene {
    /// A scene from its four attributes.
    pub fn new(shape: Shape, count: u32, color: Color, background: Background) -> Scene {
        Scene {
            shape,
            count,
            color,
            background,
        }
    }

    /// A uniformly random scene whose shape is drawn from `shapes`
    /// (falls back to all shapes if `shapes` is empty).
    pub fn random(rng: &mut impl Rng, shapes: &[Shape]) -> Scene {
        let shapes: &[Shape] = if shapes.is_empty() {
            &Shape::ALL
        } else {
            shapes
        };
        Scene {
            shape: shapes[rng.random_range(0..shapes.len())],
            count: rng.random_range(MIN_COUNT..=MAX_COUNT),
            color: Color::ALL[rng.random_range(0..Color::ALL.len())],
            background: Background::ALL[rng.random_range(0..Background::ALL.len())],
        }
    }

    /// The claim that states every attribute of this scene.
    pub fn claim_all(&self) -> Claim {
        Claim {
            shape: self.shape,
            count: Some(self.count),
            color: Some(self.color),
            background: Some(self.background),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(a: [u8; 3], b: [u8; 3]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(&x, y)| (x as f32 - y as f32).powi(2))
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn names_round_trip() {
        for s in Shape::ALL {
            assert_eq!(Shape::from_name(s.name()), Some(s));
            assert_eq!(Shape::from_name(s.plural()), Some(s));
        }
        for c in Color::ALL {
            assert_eq!(Color::from_name(c.name()), Some(c));
        }
        for b in Background::ALL {
            assert_eq!(Background::from_name(b.name()), Some(b));
        }
        assert_eq!(Shape::from_name("Crosses"), Some(Shape::Cross));
        assert_eq!(Background::from_name("grey"), Some(Background::Gray));
        assert_eq!(Color::from_name("orange"), None);
        assert!(Shape::Circle.is_seen() && !Shape::Diamond.is_seen());
    }

    #[test]
    fn palette_is_well_separated() {
        let mut all: Vec<[u8; 3]> = Color::ALL.iter().map(|c| c.rgb()).collect();
        all.extend(Background::ALL.iter().map(|b| b.rgb()));
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                let d = dist(all[i], all[j]);
                assert!(d > 110.0, "{:?} vs {:?}: {d}", all[i], all[j]);
            }
        }
    }
}
