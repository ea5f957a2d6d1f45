"""Dialogue acts of the offline provider: what each reasoning turn asks and answers.

Each act is a pair of template lists for :func:`.grammar.realise` (question, answer). The
opening acts (``need``, ``context``, ``pair``) state the path's reasoning question: a need,
the scene's context or its meaning, never "list the objects". The middle acts ask about a
function, a material, a place, the scene's role for the object, what it goes with, who
relies on it, its look, a relation or a part; answers are short and carry table phrases,
not filler; ``tell_apart`` is the only act that may use a frame position, and only when nothing
else tells same-named objects apart. ``unknown_*`` acts serve labels the knowledge table
lacks: they say what the pixels show and do not invent a purpose. All text is written for
this project.

Slots: ``{The}``/``{the}`` the target's focus with its article, ``{ref}``/``{ref_obj}`` the
target as subject/object (its focus, or a pronoun once named), ``{it}``/``{It}``/``{is}``/
``{its}`` pronoun forms, ``{gen}``/``{are}`` the generic plural and its verb ("sofas are",
"coffee is"), ``{a}`` the indefinite name, ``{need}``, ``{use}``, ``{use2}``, ``{place}``,
``{place2}``, ``{material}``, ``{kind}`` (with article), ``{colour}``, ``{share}`` ("about 12%"),
``{rel}``/``{other}`` a relation and the other object's name, ``{whole}`` the whole's focus,
``{part}``, ``{reason}``, ``{number}``, ``{names}``, ``{the2}``, ``{the1}``, ``{trait}``/``{trait2}``
(knowledge-table traits of the kind, plural verb phrases), ``{pair}``/``{pair2}`` what it is
usually seen with, ``{user}``/``{user2}`` who relies on it, ``{who}``/``{need_ans}`` the asker
of a need ("you"/"them") and the need in their person. ``{use3}``, ``{place3}``, ``{trait3}``,
``{pair3}``, ``{pair4}``, ``{user3}`` and the ``user`` slots are filled only when the table has
them; a template naming a missing one is not used (:func:`.phrasing.usable`).
"""

from __future__ import annotations

ACTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "need": (
        (
            "(I'd like to|I want to|I need to|I'm hoping to) {need}. (What here could help (with that|me)?|Is there "
            "something in this (picture|scene|photo) that would help?|What in this (scene|picture) would "
            "you (pick|choose) "
            "for that?)",
            "(Suppose|Say|Imagine) (someone|a visitor|a person) here (wanted|needed) to {need3}. What (would|could) "
            "they turn to?",
            "If I (wanted|had) to {need}, what in this (picture|scene|photo) (would|could) (help|be useful)?",
            "What here (would|could) (help|be useful) if someone needed to {need3}?",
            "(Is there anything|What is there) (here|in this photo) that (would let|could help) me {need}?",
        ),
        (
            "{The} (would help|could help|would let) {who} {need_ans}.",
            "{The}, (good|handy|useful) for {use} and {use2}.",
            "{The}: {use}, {use2} and {use3}.",
            "{The}, for {use} or {use2}.",
            "{The}: {use}, or {use2}.",
        ),
    ),
    "context": (
        (
            "What (kind|sort) of (place|setting) (is this|does this look like), and what (gives it away|tells you)?",
            "(Where|In what kind of place) (might|would) this (photo|picture) have been taken, judging by "
            "what is in it?",
            "What (clue|detail) in this (picture|scene) (hints at|suggests|tells us) (where it was taken|the setting)?",
            "(Can you|Could you) (tell|guess) what (kind of place|setting) this is from (the things|what "
            "you see) in it?",
        ),
        (
            "(Probably|Likely) {setting}: {the} gives it away.",
            "{Setting_cap}, going by {the}.",
            "(Perhaps|Maybe) {setting}; {the} fits, {a_kind} for {use}.",
            "{The} suggests {setting}, where {gen} {are} used for {use}.",
        ),
    ),
    "pair": (
        (
            "What (kind|sort) of (place|setting) is this, judging by (the things|what is) in it?",
            "What does (this scene|this picture) (seem to be|look like it is) (about|set in)?",
            "(Where|In what kind of place) (might|would) (someone|a person) (find|see) a scene like this?",
        ),
        (
            "(Probably|Most likely|It looks like) {place}: {the1} and {the2} (both |)(point that way|fit that setting|"
            "suggest it).",
            "{The1} and {the2} (suggest|point to|fit) {place}, (as|since) both (belong|are common) there.",
            "(Hard to say for sure|It is not certain); {the1} (suggests|points to) {place}, while {the2} "
            "(fits|suggests) "
            "{place2}.",
        ),
    ),
    "function": (
        (
            "What {is} {ref} (usually|mainly|normally) used for?",
            "(Why|How) (would|could) {ref} (help|be useful) (here|in a place like this)?",
            "What {is} {ref} good for?",
            "(How|Why) {does} {ref} (help|matter) (in a setting like this|here)?",
            "What (would|could) (I|someone) do with {ref_obj}?",
        ),
        (
            "{Use_cap}, {use2} or {use3}.",
            "(Mainly|Mostly) {use}; also {use2}.",
            "{Use_cap} and {use2}.",
        ),
    ),
    "role": (
        (
            "Why (might|would) {ref} be (here|in this scene)?",
            "What {is} {ref} doing in a (scene|place) like this?",
            "What (purpose|role) {does} {ref} (serve|have) here?",
        ),
        (
            "(Probably|Likely) for {use}.",
            "For {use}, or perhaps {use2}.",
            "Someone (probably|likely) (keeps|uses) {them} here for {use}.",
            "{Use_cap}, (I'd guess|most likely).",
        ),
    ),
    "material": (
        (
            "What {is} {ref} (probably|likely) made of?",
            "What material (would|might) {ref} be made from?",
            "What {is} {ref} (built|made) (from|out of)?",
        ),
        (
            "{Material_cap}, (usually|mostly).",
            "(Probably|Likely) {material}.",
        ),
    ),
    "place": (
        (
            "Where (would|do) you (usually|normally|typically) (find|see) {gen}?",
            "Where else (might|would) (one|you) (come across|see) {gen}?",
            "(In|At) what (sort of|kind of) place would {gen} (usually|normally) (turn up|belong)?",
        ),
        (
            "{Place_cap}, {place2} or {place3}.",
            "{Place_cap} or {place2}, (mostly|usually).",
            "(Mostly|Usually) {at_place}; (also|sometimes) {place2}.",
        ),
    ),
    "activity": (
        (
            "What {is} {ref} (probably |)(doing|up to) (here|in this scene)?",
            "Why might {ref} be (here|in this picture)?",
            "What (would|could) {ref} be busy with in a place like this?",
        ),
        (
            "(Probably|Maybe) {use}, (or|or perhaps) {use2}.",
            "{Use_cap}, (as|like) {gen} often (are|do) {at_place}.",
            "(Likely|Perhaps) {use}; {gen} {are} often seen {at_place}.",
            "{Use_cap}, (I'd guess|most likely), or {use2}.",
            "(Hard to say|Not sure), but (probably|maybe) {use}.",
        ),
    ),
    "look": (
        (
            "What {does} {ref} look like (here|in this picture)?",
            "How (would|could) I recognise {ref_obj} (in the picture|at a glance)?",
            "What colour {is} {ref}, and how much of the picture {does} {it} (take up|fill)?",
        ),
        (
            "{Colour_cap}, (about|roughly) {share_bare} of the (frame|picture).",
            "(Mostly|Mainly) {colour}, (covering|filling) {share} of the (frame|picture).",
            "A {colour} {name1}, (about|roughly) {share_bare} of the (image|frame).",
        ),
    ),
    "relation": (
        (
            "How {does} {ref} relate to the (things|objects) around {them}?",
            "(Where|How) {does} {ref} sit (relative to|compared with) the rest of the scene?",
            "What can you say about {ref_obj} compared with (its surroundings|what is around {them})?",
        ),
        (
            "{It} {is} {rel} the {other}.",
            "(In this shot|Going by the outlines), {it} {is} {rel} the {other}.",
        ),
    ),
    "tell_apart": (
        (
            "There (are|seem to be) {number} {names} here. How (do|can) I tell (this one|the one you mean) apart?",
            "(But|And) there is more than one {name1}; how (can I be sure|do I know) I have the (one you mean|"
            "correct one)?",
            "With {number} {names} in the picture, how do I find the (one you mean|one you are talking about)?",
        ),
        (
            "(Look for|It is) {the}: {reason}.",
            "{The}, (since|because) {reason}.",
            "{The}; {reason}.",
        ),
    ),
    "part": (
        (
            "What part of {whole} (would|could) I look at to {need}?",
            "Which part of {whole} is (used|responsible|meant) for {use}?",
            "(And|So) what part of {whole} (helps with|takes care of) {use}?",
        ),
        (
            "(The|Its) {part}: {gen} {are} (used|there|what it uses) for {use}.",
            "{The}. (That is the part|That part is) (used|responsible) for {use}.",
            "(Look at|It is) {the}; {gen} {are} (what|the part that) (handles|takes care of) {use}.",
        ),
    ),
    "need_animate": (
        (),
        (
            "{The}; {gen} {are} (often|usually) seen {use}.",
            "{The} could help {who} {need_ans}.",
            "{The}; (you often see|you will often find) {gen} {use}.",
        ),
    ),
    "held": (
        (
            "Is there (anything|something) {link} {whole} that (could|would) help me {need}?",
            "What {link} {whole} (would|could) (help|be useful) if I wanted to {need}?",
        ),
        (
            "{The}: {gen} {are} (meant|made) for {use}.",
            "(Yes|Sure), {the}; (that is|this is) (what|the thing) {gen} {are} for: {use}.",
        ),
    ),
    "held_plain": (
        ("What (lies|sits|is placed) {link} {whole}?", "(Is there|Can you see) anything {link} {whole}?"),
        (
            "(There is|You can see) {a} {link} {it_whole}: a {colour} (patch|area) covering {share} of the frame.",
            "(Yes|Sure): {the}, (mostly|mainly) {colour}, (about|roughly) {share_bare} of the picture.",
        ),
    ),
    "part_plain": (
        (
            "What (smaller |)(detail|part) (can|could) I (make out|see) on {whole}?",
            "(Is there|Can you point out) (a|any) (part|detail) of {whole} (worth|that is worth) "
            "(a closer look|looking at)?",
        ),
        (
            "(There is|You can see) {a} on {it_whole}: a {colour} (patch|area) covering {share} of the frame.",
            "(Yes|Sure): {the}, (mostly|mainly) {colour}, (about|roughly) {share_bare} of the picture.",
        ),
    ),
    "unknown_open": (
        (
            "What (draws|catches) (my|the) eye (here|in this picture)?",
            "What is that {colour} (shape|thing|area) in the (picture|photo)?",
        ),
        (
            "(Probably|Perhaps) {the}: a {colour} (shape|area|region) that (covers|takes up) {share} of the frame.",
            "(It is|That is) labelled as {a}; (mostly|mainly) {colour}, (it|and it) (covers|fills) {share} of the "
            "(frame|picture).",
        ),
    ),
    "unknown_use": (
        ("What (might|could) {ref} be for?", "(Do we know|Can you tell) what {ref} {is} (used|meant) for?"),
        (
            "(I can't|I cannot) tell its purpose from the picture alone; it is labelled as {a} and nothing more.",
            "The picture (alone |)does not (say|show) what {it} {is} for; (all|what) I know is the label, {a}.",
        ),
    ),
    "rank": (
        (
            "How big {is} {ref} compared with the rest of the picture?",
            "How much room {does} {ref} take up next to the other labelled things?",
        ),
        (
            "{It} {is} the {rank} of the {total} labelled regions, at {share} of the frame.",
            "(Among|Of) the {total} labelled regions, {it} {is} the {rank}; {it} (covers|fills) {share} of "
            "the picture.",
        ),
    ),
    "pair_plain": (
        (
            "What (draws|catches) (my|the) eye (first |)(here|in this picture)?",
            "What details (here|in this (picture|photo)) (are|seem) worth a closer look?",
        ),
        (
            "{The1} and {the2}, (both|each) (easy to make out|clearly visible) (here|in the frame).",
            "(Mainly|Above all) {the1} and {the2}.",
        ),
    ),
    "trait": (
        (
            "What (else |)(is worth knowing|can you tell me) about {gen}?",
            "(Anything|Is there anything) (typical|notable) about {gen}?",
            "What {are} {gen} (usually|normally) like?",
        ),
        (
            "{Gen} {trait} and {trait2}.",
            "{Gen} {trait}, {trait2} and {trait3}.",
            "(Most|Many) {gen} {trait}; some {trait2}.",
            "They {trait} and {trait2}.",
        ),
    ),
    "companion": (
        (
            "What (do you|would you) (usually|often) see (with|alongside) {gen}?",
            "What else (tends to|would usually) turn up (with|near) {gen}?",
        ),
        (
            "{Pair_cap}, {pair2} or {pair3}.",
            "{Pair_cap} and {pair2}.",
            "{Pair_cap}, {pair2} and {pair3}.",
            "{Pair_cap}, {pair2}, {pair3} or {pair4}.",
        ),
    ),
    "user": (
        (
            "Who (would|might) need {gen} (most|the most)?",
            "Who {are} {gen} (mainly|mostly) for?",
            "Who (tends to|would) rely on {gen}?",
        ),
        (
            "{User_cap}, {user2} and {user3}.",
            "(Mostly|Mainly) {user} and {user2}.",
            "{User_cap}; {user2} too.",
        ),
    ),
    "count": (
        (
            "How many {names} (are there|can I see) (in the picture|here)?",
            "(Are there|Can I see) (other|more) {names}?",
        ),
        ("(Just|Only) {number_phrase} in (the|this) (picture|photo).", "I count {number_phrase} (here|in the frame)."),
    ),
}
"""Act name -> (question templates, answer templates)."""

ASK_A_PERSON = ("(Try asking|You could ask) {the}.", "{The} (looks like|seems) the (one|person) to ask.")
"""Answers to a need met by a person: someone to ask, never what people are "used for"."""

OPENERS = ("", "", "", "Hi! ", "Hello. ", "Quick question: ", "Hi there. ")
"""Prefixes of a dialogue's first question."""

CONNECTORS = ("", "", "", "", "Okay. ", "Good. ", "Makes sense. ", "I see. ", "Interesting. ", "Got it. ", "Thanks. ")
"""Prefixes of later questions."""

SEG_REQUESTS = (
    "(Please|Now) segment {what} (we have been (discussing|talking about)|this conversation led to|the answers "
    "(above|so far) point to).",
    "(Based on|Using|Going by) (our conversation|the dialogue above|everything above), (please |)(mark|outline|"
    "segment) {what} at pixel level.",
    "Could you (produce|draw|give me) a (segmentation|mask) of {what} (we settled on|the conversation points to)?",
    "(Segment|Mask out) {what} (that|which) (answers|matches) (the questions above|the conversation).",
    "(Please|Kindly) (divide|split) the image so that {what} (from our talk|we discussed) (stands out|is masked).",
)
"""Templates of the final segmentation request; ``{what}`` is "the object", "that part", ..."""

SEG_WHAT = ("the object", "the thing", "the target", "that object", "the item")
SEG_WHAT_PART = ("that part", "the part", "that detail")

SEG_LEADS = (
    "(Sure|Of course|Certainly|Done|Here it is)(,|:|.) ",
    "(The segmentation|The mask|The result) is ",
    "(Segmented|Marked) as ",
    "",
)
"""Templates of the final answer's lead before ``[OBJ]focus[SEG]``."""
