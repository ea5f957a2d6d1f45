"""Dialogue acts of the offline provider: what each reasoning turn asks and answers.

Each act is a pair of template lists for :func:`.grammar.realise` (question, answer). The
opening acts (``need``, ``context``, ``pair``) state the path's reasoning question: a need,
the scene's context or its meaning, never "list the objects". The middle acts ask about a
function, a material, a place, the scene's role for the object, its look, a relation or a
part; ``tell_apart`` is the only act that may use a frame position, and only when nothing
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
(knowledge-table traits of the kind, plural verb phrases).
"""

from __future__ import annotations

ACTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "need": (
        (
            "(I'd like to|I want to|I need to|I'm hoping to) {need}. (What here could help (with that|me)?|Is there "
            "something in this (picture|scene|photo) that would help?|What in this (scene|picture) would "
            "you (use|pick) "
            "for that?)",
            "(Suppose|Say|Imagine) (someone|a visitor|a person) here (wanted|needed) to {need3}. What (would|could) "
            "they (use|turn to)?",
            "If I (wanted|had) to {need}, what in this (picture|scene|photo) (would|could) (help|be useful)?",
            "What here (would|could) (help|be useful) if someone needed to {need3}?",
            "(Is there anything|What is there) (here|in this photo) that (would let|could help) me {need}?",
        ),
        (
            "{The} (would do|is the (obvious|natural|best) (choice|candidate)|fits (best|that need|the bill)); {it} "
            "{is} (meant|made|there) for {use}.",
            "(I'd|You could) (go for|use|turn to) {the}, (since|because) {gen} {are} (meant|made|used) for {use}.",
            "{The}. {Gen} {are} (usually|typically|commonly) used for {use}, (which|and that) (is exactly|matches) "
            "what you (describe|need).",
            "(Try|Look at) {the}: (that is what|this is what) {gen} {are} for, {use}.",
            "(For that|In that case), {the} (is|seems) (your best bet|the one to use|the answer), as {gen} {are} "
            "(good|made) for {use}.",
            "{The}, {a_kind} (made of|built from) {material}, (suits that|would work): {it} {is} there for {use}.",
            "(Going by what is here|From what I can see), {the} (would serve|is the one to try); {use} is what {gen} "
            "{are} "
            "(for|good at).",
            "{The}: {use} is (its whole point|what {it} {is} for|the idea behind {them}), and {use2} (too|as well).",
            "(Head for|Check) {the}. {A_kind} like that (handles|is built for) {use}.",
            "{The} (looks like the one|is the candidate): {a_kind} (for|meant for) {use}.",
            "(Honestly|Really), {the}. (Nothing else here|No other labelled thing) (is|comes as) close to {use}.",
            "{The}; (that covers|it takes care of) {use}, and it (also helps|can help) with {use2}.",
            "(Grab|Take) {the}; {use} (is its job|comes naturally to {them}).",
            "{The} (should do it|will do nicely)(: think {use}|, being {a_kind}).",
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
            "(Probably|Most likely|It could well be) {setting}. {The} (is the (clearest|strongest) "
            "(clue|hint)|gives it "
            "away): {gen} {are} (usually|typically|often) found {at_setting}.",
            "{The} (suggests|points to|hints at) {setting}, (since|because) that is where {gen} {are} (usually|most "
            "often) (seen|found).",
            "(My guess is|I would say) {setting}; the (giveaway|telling detail) is {the}, (a typical sight|something "
            "you would expect) (there|in such a place).",
            "(Perhaps|Maybe|Quite possibly) {setting}: {the} (stands out|is a strong sign), and {gen} (belong|turn up) "
            "{at_setting} more than anywhere else.",
            "(The best clue|The strongest hint) is {the}. {Gen} (like that|of that kind) (usually|mostly) "
            "(turn up|appear) "
            "{at_setting}, so (my guess is|I would guess) {setting}.",
            "{Setting_cap}, (I think|I suspect|most likely); {the} (belongs|fits) there.",
            "(Something like|Perhaps) {setting}. {The} (gives that away|is the clue), (being|as) {a_kind} for {use}.",
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
            "{It} {is} (mostly|mainly|typically) used for {use}(, and also for {use2}|).",
            "(Mainly|Mostly) for {use}; (people|you) (also|sometimes) (rely on|use) {them} for {use2}.",
            "{Gen} {are} (handy|useful|good) for {use}(, and for {use2} as well|).",
            "{Its} (main|usual) (job|purpose|role) is {use}(; {use2} is another|).",
            "(People|Most people) (reach for|rely on) {gen} (when|for) {use}(; {use2} comes second|).",
            "(Above all|First of all), {use}. {It} can (also|even) (help with|serve for) {use2}.",
            "(Chiefly|Largely) {use}, (though|but) {use2} (counts too|is common as well).",
            "{Use_cap}, (for the most part|in most homes and places).",
            "{It} {is} there for {use}; (some people|others) (pick {them} for|use {them} for) {use2}.",
            "As {a_kind}, {it} {is} (there|built) for {use}.",
            "{Use_cap} (first|mostly), then {use2}.",
            "(Anything from|Everything from) {use} to {use2}.",
            "{Use_cap}. (That, or|Also) {use2}.",
            "(Day to day|In practice), {use}.",
        ),
    ),
    "role": (
        (
            "Why (might|would) {ref} be (here|in this scene)?",
            "What {is} {ref} doing in a (scene|place) like this?",
            "What (purpose|role) {does} {ref} (serve|have) here?",
        ),
        (
            "(Probably|Most likely|Presumably) for {use}; {gen} {are} (a normal|an ordinary|a common) sight "
            "{at_place}.",
            "That (makes sense|fits): {gen} {are} (often|usually) (kept|found) {at_place} for {use}.",
            "The (likely|probable) (reason|purpose) (here |)is {use}.",
            "People (probably|likely) (keep|use) {them} here for {use}.",
            "(Perhaps|Maybe) (someone|somebody) (needed|wanted) {them} for {use}; that is (usual|normal) {at_place}.",
            "{Use_cap}, I (suspect|would guess); {gen} {are} at home {at_place}.",
            "(It suits|That suits) {use}, (and|while) {use2} (is|would be) (another|a second) (reason|possibility).",
            "(Likely|Probably) there for {use}.",
        ),
    ),
    "material": (
        (
            "What {is} {ref} (probably|likely) made of?",
            "What material (would|might) {ref} be made from?",
            "What {is} {ref} (built|made) (from|out of)?",
        ),
        (
            "(Most likely|Probably|Usually) {material}(, like most {gen}|, as is common for {gen}|).",
            "{Gen} like (this|these) {are} (usually|typically|normally) made of {material}.",
            "I would (guess|say) {material}; (that is|this is) (the usual|a common) (choice|material) for {gen}.",
            "(Probably|Most likely) {material}(, by the usual standard|).",
            "{Material_cap}, (in most cases|as a rule|most of the time).",
            "(Typically|Usually) {material}, the usual (choice|make-up) for {gen}.",
            "(My|A fair) guess: {material}(, which is standard|, the usual build|).",
            "(Going by|From) what {gen} (normally|tend to) (use|have), {material}.",
            "{Material_cap}(, I expect|, I imagine|, in all likelihood).",
        ),
    ),
    "place": (
        (
            "Where (would|do) you (usually|normally|typically) (find|see) {gen}?",
            "Where else (might|would) (one|you) (come across|see) {gen}?",
            "(In|At) what (sort of|kind of) place (would|do) {gen} (usually|normally) (turn up|belong)?",
        ),
        (
            "(Usually|Mostly|Typically) {at_place} or {at_place2}.",
            "{Gen} {are} (a common sight|common|often seen) {at_place}; {place2} is (another|also a) "
            "(typical|likely) spot.",
            "{At_place} (above all|especially), and (often|also) {at_place2}.",
            "(You would|You'd) (usually|mostly) (meet|come across) {gen} {at_place}, (and|or) (sometimes|now and then) "
            "{at_place2}.",
            "(Think of|Picture) {place} (first|above all); {place2} (comes next|is another).",
            "(Anywhere from|Places like) {place} to {place2}.",
            "{Place_cap}, or (else|perhaps) {place2}.",
            "(Often|Frequently) {at_place}; (less often|occasionally) {at_place2}.",
            "{At_place}, (mainly|largely). ({Place2_cap} too.|Also {at_place2}.)",
        ),
    ),
    "activity": (
        (
            "What {is} {ref} (probably |)(doing|up to) (here|in this scene)?",
            "Why might {ref} be (here|in this picture)?",
            "What (would|could) {ref} be busy with in a place like this?",
        ),
        (
            "(Probably|Most likely|Perhaps) {use}(, as {gen} often do {at_place}|).",
            "(My guess is|I would guess) {use}; {gen} {are} (often|usually) (seen|found) doing that {at_place}.",
            "(It looks like|Possibly) {use}, (which|and that) is (typical|common) for {gen}.",
            "(Hard to be sure|I can't be certain), but (probably|maybe) {use}.",
            "(Maybe|Perhaps) {use}, or (perhaps|else) {use2}.",
            "{Use_cap}, (by the look of things|I imagine|if I had to bet).",
            "(Could be|Likely) {use}; that is what {gen} (often|usually) do {at_place}.",
            "{Use_cap}, (or|perhaps) {use2}(, hard to say which|).",
        ),
    ),
    "look": (
        (
            "What {does} {ref} look like (here|in this picture)?",
            "How (would|could) I recognise {ref_obj} (in the picture|at a glance)?",
            "What colour {is} {ref}, and how much of the picture {does} {it} (take up|fill)?",
        ),
        (
            "{It} {is} (mostly|mainly|largely) {colour}, (covering|taking up|filling) {share} of the (picture|frame).",
            "(Look for|You will see) a (mostly|mainly) {colour} (shape|area|region) (covering|filling|taking up) "
            "{share} of the (frame|picture).",
            "(Mostly|Largely) {colour}; (it|the region) (spans|covers) {share} of the (image|photo).",
            "(A|One) {colour} (mass|expanse|stretch) (that fills|across) {share} of the frame(, hard to miss|).",
            "(Think|Picture) {colour}: {a_kind}, (roughly|around) {share_bare} of the (shot|image).",
            "{Colour_cap} (on the whole|overall), {a_kind} (spread over|occupying) {share}(| of the frame).",
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
            "(Right|Just) {rel} the {other}, (as it happens|in this shot|going by the outlines).",
            "(Find|Spot) the {other} (first|to start); {ref} {is} {rel} it.",
            "The {other} (makes a good|is the handiest) (anchor|landmark): {ref} {is} {rel} it.",
            "{It} {is} {rel} the {other}, (which|and that) (helps|makes {them} easy to place).",
            "(Use|Go by) the {other}: {ref} {is} {rel} it.",
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
            "(Go by|Use) this: {reason}, so {the} is the one (I mean|you want).",
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
            "{The} (is the one|fits|would be my pick); {gen} {are} (often|usually) (seen|found) {use}.",
            "(That would be|I'd point to) {the}(, since {gen} {are} known for {use}|).",
            "{The} (could help|might help|looks like the best bet) (there|with that); {gen} {are} (often|usually) "
            "{use} {at_place}.",
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
            "What (are|do) {gen} (usually|normally) like?",
        ),
        (
            "{Gen} (usually|typically|mostly) {trait}(, and (many|most) {trait2}|).",
            "(Most|Many) {gen} {trait}; (plenty|a lot of them) (also|even) {trait2}.",
            "(As a rule|Generally|In general), {gen} {trait}.",
            "(Well|For one thing), {gen} (tend to|often) {trait}.",
            "(They|Most of them) {trait}(, and they often {trait2}|).",
            "(Typically|For the most part), {gen} {trait}; (many|a lot of them) also {trait2}.",
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
