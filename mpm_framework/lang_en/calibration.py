"""English instruction -> response pairs (the originals the other packs translate)."""

PAIRS: list[tuple[str, str]] = [
    ("What is the man in the picture holding?", "He is holding a red umbrella."),
    ("How many people are sitting at the table?", "Three people are sitting at the table."),
    ("What is the weather like in this photo?", "It is sunny with a few clouds in the sky."),
    ("Describe the kitchen in the image.", "The kitchen is small and bright, with white cabinets and a wooden table."),
    ("What animal is lying on the sofa?", "A brown dog is lying on the sofa."),
    ("What color is the car parked on the street?", "The car is dark blue."),
]
