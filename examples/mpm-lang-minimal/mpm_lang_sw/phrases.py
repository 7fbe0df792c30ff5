"""Swahili prompts and phrases.

Translate every text into Swahili (keep placeholders in braces, such as
{path}), then delete its entry from REVIEW: `mpm lang check sw` lists what
is left. Entries marked "machine-translated" need a speaker's review."""

# Several phrasings of "describe the image" (captioning prompts).
CAPTION_PROMPTS: tuple[str, ...] = (
    "Eleza picha hii.",
    "Kuna nini kwenye picha hii?",
    "Andika maelezo mafupi ya picha.",
    "Eleza kwa ufupi unachokiona.",
    "Eleza picha hii kwa sentensi moja.",
)

PHRASES: dict[str, str] = {
    # label of the user's turns in a transcript ('User')
    "user": "Mtumiaji",
    # label of the model's turns ('Assistant')
    "assistant": "Msaidizi",
    # system prompt: an assistant that answers questions about images, in this language
    "system": "Wewe ni msaidizi mwenye msaada. Unatazama picha na kujibu maswali kuzihusu kwa Kiswahili.",
    # label of an attached image ('Image')
    "image": "Picha",
    # an instruction to answer in this language ('Please answer in English.')
    "answer_in_language": "Tafadhali jibu kwa Kiswahili.",
    # prefix of a text-to-image prompt ('Paint: ')
    "paint_prompt": "Chora: ",
    # message after painting; placeholder {path}
    "paint_saved": "Picha imehifadhiwa katika {path}.",
    # greeting when an interactive chat starts; placeholder {image}
    "chat_welcome": "Mazungumzo kuhusu {image}. Uliza swali kuhusu picha.",
    # how to leave the interactive chat
    "chat_exit_hint": "Andika 'exit' au bonyeza Ctrl-D ili kuondoka.",
    # message when the chat ends
    "chat_goodbye": "Kwaheri!",
}

# entry -> "untranslated" | "machine-translated"; delete an entry once a speaker checked it
REVIEW: dict[str, str] = {
}
