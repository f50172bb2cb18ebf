"""Build the embedded demo retrieval collection (src/deepretrieval/data/demo/), deterministically.

The collection exists to show the vocabulary gap that query rewriting closes: users ask in lay words
("heart attack", "flat tyre"), documents are written in formal words ("myocardial infarction",
"puncture"). Everything comes from the hand-written concept inventory below (no third-party text):

* each concept has lay phrases (used in queries), formal synonyms (used in documents, best known first)
  and one formal fact per facet (signs, causes, remedy, prevention);
* every concept yields one document per facet, composed from sentence templates; a few of those documents
  also mention the lay phrase (so the original query is not hopeless), the rest never use a lay word;
* every concept has one hand-written distractor document that uses its lay words in another sense;
* every concept yields one lay query per facet; the same-facet document is judged 2, the concept's other
  documents 1. Queries are split into train and held-out test, stratified by concept.

Run ``python scripts/build_demo_collection.py`` to rewrite the files (byte-identical on every run) and the
README with the BM25 figures measured on them; ``--out DIR`` writes elsewhere, ``--check`` only verifies.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import bm25s
import Stemmer

SEED = 20240603
TEST_FRACTION = 0.30
LAY_MENTIONS_PER_CONCEPT = 2
FACETS = ("signs", "causes", "remedy", "prevention")
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "deepretrieval" / "data" / "demo"
BM25_K1, BM25_B = 0.9, 0.4


@dataclass(frozen=True)
class Domain:
    """Domain-specific nouns the document templates need."""

    experts: str  # plural, sentence-initial capitalisation applied by the templates
    expert: str  # singular, after "a"/"an"
    literature: str
    caseload: str


DOMAINS: dict[str, Domain] = {
    "health": Domain("clinicians", "physician", "the clinical literature", "primary care consultations"),
    "home": Domain(
        "building surveyors",
        "qualified tradesperson",
        "building maintenance guidance",
        "domestic maintenance visits",
    ),
    "cars": Domain(
        "automotive technicians", "qualified mechanic", "workshop service manuals", "workshop visits"
    ),
    "computing": Domain("support engineers", "IT technician", "technical manuals", "helpdesk tickets"),
    "cooking": Domain(
        "culinary scientists",
        "professional chef",
        "culinary science texts",
        "questions put to cookery schools",
    ),
    "gardening": Domain(
        "horticulturists",
        "horticultural adviser",
        "horticultural guidance",
        "enquiries to horticultural advisers",
    ),
    "finance": Domain(
        "financial advisers",
        "accredited financial adviser",
        "personal finance literature",
        "consumer finance complaints",
    ),
    "travel": Domain(
        "travel industry specialists",
        "travel specialist",
        "aviation and travel regulations",
        "passenger complaints",
    ),
    "pets": Domain(
        "veterinarians", "veterinary surgeon", "the veterinary literature", "small-animal consultations"
    ),
}


class Clause(str):
    """A lay phrase that is a whole clause ("car won't start"): queries put it first ("car won't start what to
    do") instead of inside a noun slot ("signs of flat tyre")."""


@dataclass(frozen=True)
class Concept:
    """One thing people search for, in their words (lay) and the documents' words (formal)."""

    key: str
    domain: str
    lay: tuple[str, ...]
    formal: tuple[str, ...]
    signs: str
    causes: str
    remedy: str
    prevention: str
    decoy: tuple[str, str]  # (title, text) using the lay words in another sense
    shared: tuple[str, ...] = ()  # stems allowed in both vocabularies (a partial gap, on purpose)

    def fact(self, facet: str) -> str:
        return getattr(self, facet)


def C(
    domain: str,
    key: str,
    lay: tuple[str, ...],
    formal: tuple[str, ...],
    signs: str,
    causes: str,
    remedy: str,
    prevention: str,
    decoy: tuple[str, str],
    shared: tuple[str, ...] = (),
) -> Concept:
    return Concept(key, domain, lay, formal, signs, causes, remedy, prevention, decoy, shared)


CONCEPTS: tuple[Concept, ...] = (
    # ---------------------------------------------------------------- health
    C(
        "health",
        "heart_attack",
        ("heart attack",),
        ("myocardial infarction", "coronary thrombosis", "acute coronary syndrome"),
        "crushing chest pain radiating to the left arm or jaw, diaphoresis, dyspnoea and nausea",
        "rupture of an atherosclerotic plaque followed by thrombotic occlusion of a coronary artery",
        "emergency percutaneous coronary intervention, thrombolysis and antiplatelet medication",
        "smoking cessation, statin therapy, regular aerobic exercise and control of serum cholesterol",
        (
            "Derby day report",
            (
                "The visitors launched attack after attack through the heart of midfield. Their captain said the "
                "heart of the side kept the attack going after the break."
            ),
        ),
    ),
    C(
        "health",
        "high_blood_pressure",
        ("high blood pressure",),
        ("hypertension", "arterial hypertension", "hypertensive disease"),
        "occipital headache, blurred vision or epistaxis, although most cases are silent for years",
        "excess dietary sodium, obesity, renal disease, chronic stress and genetic predisposition",
        (
            "antihypertensive medication such as ACE inhibitors, thiazide diuretics and calcium channel "
            "antagonists"
        ),
        "a low-sodium diet, weight management, moderate alcohol intake and regular aerobic exercise",
        (
            "Weekend weather outlook",
            (
                "A ridge of high pressure settles over the coast, so expect calm seas and a blood red sunset. "
                "Pressure stays high until Tuesday."
            ),
        ),
    ),
    C(
        "health",
        "sore_throat",
        ("sore throat",),
        ("pharyngitis", "tonsillitis", "pharyngeal inflammation"),
        "odynophagia, erythema of the pharynx, tonsillar exudate and fever",
        "viral infection or, less often, Streptococcus pyogenes",
        "analgesics, warm saline gargles and penicillin for confirmed bacterial infection",
        "hand hygiene and avoiding close contact with infected individuals",
        (
            "Choir rehearsal notes",
            (
                "After losing the seating vote the altos were sore about it all week. The conductor reminded "
                "everyone to relax the throat before the high passage."
            ),
        ),
    ),
    C(
        "health",
        "common_cold",
        ("common cold", "head cold"),
        ("viral upper respiratory tract infection", "nasopharyngitis", "coryza"),
        "rhinorrhoea, nasal congestion, sneezing and mild malaise",
        "rhinoviruses and other respiratory viruses transmitted by droplets and contaminated surfaces",
        "rest, adequate fluids, paracetamol and saline nasal irrigation, since antibiotics are ineffective",
        "frequent handwashing and limiting contact with infected people during winter",
        (
            "Storing drinks for a party",
            (
                "Keep the cold drinks in a common cooler by the door. Head to the garage for extra ice if the "
                "fridge is full; a cold garage works fine."
            ),
        ),
    ),
    C(
        "health",
        "hay_fever",
        ("hay fever",),
        ("allergic rhinitis", "pollinosis", "seasonal allergy"),
        "paroxysmal sneezing, nasal congestion, pruritic watery eyes and rhinorrhoea",
        "an IgE-mediated hypersensitivity to airborne pollen from grasses, trees and weeds",
        "oral antihistamines, intranasal corticosteroids and allergen immunotherapy",
        "limiting outdoor exposure when pollen counts peak and using air filtration indoors",
        (
            "Harvest festival",
            (
                "The barn was stacked with hay bales, and by evening the dancing reached fever pitch. Children "
                "jumped from the hay loft into the straw."
            ),
        ),
    ),
    C(
        "health",
        "stomach_bug",
        ("stomach bug", "tummy bug"),
        ("gastroenteritis", "norovirus infection", "enteric infection"),
        "acute diarrhoea, vomiting, abdominal cramps and low-grade pyrexia",
        "norovirus, rotavirus or bacterial pathogens spread by the faecal-oral route",
        "oral rehydration solution, rest and, in severe cases, antiemetics",
        "thorough handwashing with soap, safe handling of meals and rotavirus vaccination",
        (
            "Release retrospective",
            (
                "The lead engineer had no stomach for another late night, so the last bug was left for the next "
                "sprint. The bug tracker now lists twelve open items."
            ),
        ),
    ),
    C(
        "health",
        "heartburn",
        ("heartburn",),
        ("gastroesophageal reflux disease", "GERD", "acid reflux"),
        "a retrosternal burning sensation after meals, regurgitation and a sour taste",
        "relaxation of the lower oesophageal sphincter, hiatus hernia, obesity and large fatty meals",
        "proton pump inhibitors, H2 receptor antagonists and antacids",
        "smaller meals, raising the head of the bed, weight loss and avoiding late-night eating",
        (
            "Chilli cook-off results",
            (
                "Judges tasted twenty pots of chilli and joked that heartburn was the real winner. The spiciest "
                "entry came with a heartburn warning card."
            ),
        ),
    ),
    C(
        "health",
        "back_pain",
        ("back pain", "bad back"),
        ("lumbago", "lumbar strain", "dorsalgia"),
        "stiffness of the lumbar region, paraspinal muscle spasm and restricted spinal flexion",
        "muscular strain, intervertebral disc herniation and degenerative spondylosis",
        "physiotherapy, non-steroidal anti-inflammatory drugs and a graded return to activity",
        "core muscle strengthening, ergonomic posture at work and correct lifting technique",
        (
            "Moving house checklist",
            (
                "Send the back door key to the agent and book the van early. Packing the loft is a pain, so "
                "start with the bad weather clothes."
            ),
        ),
    ),
    C(
        "health",
        "pink_eye",
        ("pink eye",),
        ("conjunctivitis", "conjunctival inflammation"),
        "conjunctival redness, discharge, crusting of the eyelids and a gritty sensation",
        "adenovirus, bacterial infection or allergens irritating the conjunctiva",
        "lubricating drops, topical antibiotic drops for bacterial cases and cool compresses",
        "hand hygiene and not sharing towels, pillows or cosmetics",
        (
            "Painting the nursery",
            (
                "We chose a soft pink for the walls and an eye-catching mural above the cot. The pink paint "
                "needed two coats to hide the old colour."
            ),
        ),
    ),
    C(
        "health",
        "chickenpox",
        ("chickenpox", "chicken pox"),
        ("varicella", "varicella-zoster infection"),
        "an itchy vesicular rash spreading from the trunk, fever and malaise",
        "primary infection with the varicella-zoster virus, spread by respiratory droplets",
        "calamine lotion, antipyretics and aciclovir for high-risk patients",
        "varicella vaccination in childhood",
        (
            "Keeping backyard hens",
            (
                "A chicken coop needs good ventilation and a secure run. Check each chicken weekly for mites and "
                "keep the bedding dry."
            ),
        ),
    ),
    C(
        "health",
        "shingles",
        ("shingles",),
        ("herpes zoster", "zoster reactivation"),
        "a painful unilateral vesicular rash confined to one dermatome, preceded by burning neuralgia",
        "reactivation of latent varicella-zoster virus in the dorsal root ganglia",
        "early antiviral therapy such as valaciclovir together with analgesia",
        "recombinant zoster vaccination for adults over fifty",
        (
            "Roofing materials compared",
            (
                "Asphalt shingles are cheap and quick to lay, while cedar shingles weather to a silver grey. "
                "Replace cracked shingles before winter."
            ),
        ),
    ),
    C(
        "health",
        "food_poisoning",
        ("food poisoning",),
        ("foodborne illness", "salmonellosis", "bacterial enteritis"),
        "abdominal cramps, vomiting and diarrhoea within hours of a contaminated meal",
        "Salmonella, Campylobacter or staphylococcal toxins in undercooked poultry, eggs or shellfish",
        "fluid and electrolyte replacement, with antibiotics only for invasive infection",
        "thorough cooking, refrigeration below five degrees and separating raw and cooked items",
        (
            "Community garden newsletter",
            (
                "Please do not use rat poison near the beds; it is poisoning the hedgehogs. Surplus food from "
                "the plots goes to the food bank on Fridays."
            ),
        ),
    ),
    C(
        "health",
        "bruise",
        ("bruise", "black and blue mark"),
        ("contusion", "haematoma", "ecchymosis"),
        "purple discoloration that fades to yellow, local tenderness and swelling",
        "blunt trauma rupturing subcutaneous capillaries",
        "cold compresses, compression and elevation during the first day",
        "protective padding in contact sports and removing trip hazards at home",
        (
            "Choosing pears at the market",
            (
                "Ripe pears bruise easily, so carry them on top of the bag. A small bruise does not spoil the "
                "fruit, though a black mark near the stem may."
            ),
        ),
    ),
    C(
        "health",
        "nosebleed",
        ("nosebleed", "bloody nose"),
        ("epistaxis", "nasal haemorrhage"),
        "bleeding from one nostril, usually from the vessels of the anterior septum",
        "dry air, digital trauma, anticoagulant medication and hypertension",
        "leaning forward, firm pressure on the soft part of the septum for ten minutes and, if needed, cautery",
        "humidifying indoor air and applying petroleum jelly inside the nostrils",
        (
            "Aircraft paint shop",
            (
                "The nose cone was resprayed in red, but the colours began to bleed into the white stripe. The "
                "nose section goes back in the booth on Monday."
            ),
        ),
    ),
    C(
        "health",
        "cant_sleep",
        ("trouble sleeping at night", Clause("can't sleep")),
        ("insomnia", "sleeplessness", "dyssomnia"),
        "difficulty initiating or maintaining rest, early waking and daytime fatigue",
        "anxiety, irregular schedules, caffeine, chronic pain and depression",
        "cognitive behavioural therapy for insomnia and short courses of hypnotic medication",
        "a regular bedtime, limiting caffeine after midday and keeping screens out of the bedroom",
        (
            "Night bus timetable",
            (
                "The night service runs every twenty minutes after midnight. Passengers who are sleeping at the "
                "last stop will be woken by the driver."
            ),
        ),
    ),
    # ---------------------------------------------------------------- home
    C(
        "home",
        "dripping_tap",
        ("dripping tap", "leaky tap"),
        ("faucet leak", "worn washer", "valve cartridge failure"),
        "persistent seepage from the spout, limescale marks in the basin and a rising water bill",
        "a perished rubber washer, a damaged valve seat or a cracked ceramic cartridge",
        "isolating the supply, replacing the washer or cartridge and reseating the valve",
        "avoiding overtightening the handle and replacing washers at the first hint of seepage",
        (
            "Ordering at the craft bar",
            (
                "Six local ales are on tap tonight. The barman warned that the cask was dripping, so the stout "
                "was served from the bottle."
            ),
        ),
    ),
    C(
        "home",
        "blocked_sink",
        ("blocked sink", Clause("kitchen sink backing up")),
        ("drain obstruction", "clogged waste pipe", "trap blockage"),
        "slow drainage, standing water in the basin, gurgling from the trap and foul odours",
        "accumulated grease, food debris, hair and soap scum narrowing the waste pipe",
        "a plunger, dismantling and cleaning the trap, or mechanical rodding with a drain auger",
        "strainers over the plughole, never pouring fat down the drain and periodic flushing with hot water",
        (
            "Kitchen refit ideas",
            (
                "The new island has a second sink and the dishwasher is blocked in beside it. A butler sink "
                "suits the farmhouse look."
            ),
        ),
    ),
    C(
        "home",
        "damp_walls",
        ("damp patches on walls", "wet walls"),
        ("moisture ingress", "condensation", "efflorescence"),
        "tide marks near skirting level, salt efflorescence, blistered plaster and a musty odour",
        "a failed moisture barrier, bridged cavities, leaking gutters and poor ventilation",
        "injecting a chemical moisture barrier, repairing gutters and improving ventilation",
        "keeping external ground levels low, clearing gutters and ventilating kitchens and bathrooms",
        (
            "Walking the coast path",
            (
                "Low dry stone walls line the lane, and after the storm there were wet patches all along the "
                "track. Expect a damp start."
            ),
        ),
    ),
    C(
        "home",
        "no_hot_water",
        (Clause("no hot water"), Clause("shower running cold")),
        ("boiler failure", "immersion heater fault", "thermostat malfunction"),
        "a tepid supply at every outlet, a boiler lockout code and the pilot flame going out",
        "low system pressure, a failed diverter valve, a faulty thermostat or a seized circulation pump",
        "repressurising the system, resetting the boiler and replacing the diverter valve or pump",
        "an annual boiler service, bleeding radiators and checking system pressure each autumn",
        (
            "Spa day review",
            (
                "The hot stone massage was lovely, but the plunge pool water was running no warmer than the sea. "
                "Bring a towel for the cold shower."
            ),
        ),
    ),
    C(
        "home",
        "squeaky_floor",
        ("squeaky floorboards", "creaky floor"),
        ("subfloor movement", "loose joists", "fastener slippage"),
        "creaking underfoot at particular spots, visible movement of boards and gaps at the skirting",
        "timber shrinkage, loose nails and joists that have dried and twisted",
        "screwing boards down into the joists, adding blocking between joists and dusting the joints with talc",
        "stable indoor humidity and using screws rather than nails when relaying boards",
        (
            "Toy shop favourites",
            (
                "The squeaky rubber duck is back in stock. Our creaky old rocking horse sits on the shop floor "
                "by the window."
            ),
        ),
    ),
    C(
        "home",
        "tripping_electrics",
        (Clause("power keeps cutting out"), Clause("fuse keeps blowing")),
        ("circuit breaker tripping", "electrical overload", "short circuit"),
        "a residual current device that trips repeatedly, scorched sockets and flickering lighting",
        "an overloaded circuit, a short circuit in an appliance or moisture in an outdoor socket",
        (
            "isolating appliances one at a time, replacing faulty cabling and having an electrician test the "
            "circuit"
        ),
        "spreading heavy loads across circuits and periodic electrical inspection",
        (
            "Film club notes",
            (
                "The director keeps cutting out the slow scenes, and the power of the ending is blowing everyone "
                "away. The fuse on the bomb scene is a clever touch."
            ),
        ),
    ),
    C(
        "home",
        "ceiling_crack",
        ("crack in the ceiling", "cracked ceiling"),
        ("plaster fissure", "structural settlement", "lath and plaster failure"),
        "hairline fissures along board joints, sagging plaster and fine dust on surfaces below",
        "seasonal timber movement, structural settlement and water ingress from above",
        "raking out and filling fine fissures, reinforcing with scrim tape or overboarding sagging areas",
        "controlling humidity, fixing roof and plumbing leaks promptly and avoiding heavy loads in the loft",
        (
            "Cafe review",
            (
                "The coffee was good but the service cracked under pressure, and the ceiling fans never stopped. "
                "Crack open a window if you sit upstairs."
            ),
        ),
    ),
    C(
        "home",
        "draughty_windows",
        ("draughty windows", "cold draft from windows"),
        ("air infiltration", "weatherstripping failure", "glazing seal failure"),
        "chilly air movement near casements, rattling sashes and condensation between panes",
        "perished weatherstripping, warped frames and failed sealed glazing units",
        "fitting new compression seals, adjusting hinges and replacing failed glazing units",
        "annual inspection of seals, repainting timber frames and lubricating hinges",
        (
            "Pub quiz night",
            (
                "Teams play darts and draughts between rounds. The draft beer is half price, but it gets cold "
                "near the windows."
            ),
        ),
    ),
    C(
        "home",
        "running_toilet",
        (Clause("toilet keeps running"), Clause("toilet won't stop refilling")),
        ("cistern fill valve fault", "flush valve leak", "ballcock failure"),
        "a constant hiss, water trickling into the pan and a cistern that tops itself up without use",
        "a worn flapper seal, a misadjusted float and a fill valve that fails to close",
        "adjusting the float height, replacing the flapper seal or fitting a new fill valve",
        "descaling the cistern in hard water areas and checking the float arm yearly",
        (
            "Marathon day guide",
            (
                "Runners should use the toilet block before the start, as the course keeps running past the park "
                "for nine miles. Stop at the filling station for water."
            ),
        ),
    ),
    C(
        "home",
        "woodworm",
        ("woodworm", "small holes in old beams"),
        ("furniture beetle", "wood-boring insects", "Anobium punctatum"),
        "round exit apertures about two millimetres across, fine frass beneath the timber and crumbling edges",
        "larvae of Anobium punctatum tunnelling through damp softwood and hardwood sapwood",
        "treating affected timber with a permethrin insecticide and replacing structurally weakened members",
        (
            "keeping timber dry, ventilating subfloor voids and inspecting second-hand items before bringing "
            "them in"
        ),
        (
            "Fishing bait guide",
            (
                "Garden worms and woodworm larvae both tempt perch, but most anglers prefer red maggots. Drill "
                "small holes in the bait box lid."
            ),
        ),
    ),
    C(
        "home",
        "peeling_paint",
        (Clause("paint peeling off"), "flaking paint"),
        ("coating delamination", "adhesion failure", "blistering"),
        "lifting scales of the coating, blisters and bare patches of substrate",
        "moisture behind the coating, poor surface preparation and incompatible primers",
        "scraping back to a sound edge, sanding, priming and applying a breathable finish",
        "degreasing and keying surfaces before decorating and keeping moisture out of the substrate",
        (
            "Art class supplies",
            (
                "Bring acrylic paint, a palette knife and an apron. Peeling the masking tape off slowly gives a "
                "crisp edge."
            ),
        ),
    ),
    C(
        "home",
        "banging_pipes",
        ("banging pipes", "noisy pipes"),
        ("water hammer", "hydraulic shock", "pressure surge"),
        "a loud knock when a valve closes quickly, vibrating pipework and loosened brackets",
        "fast-closing valves in high-pressure supplies and unsecured pipework",
        "fitting water hammer arrestors, reducing supply pressure and clipping pipework securely",
        "specifying slow-closing valves and a pressure-reducing valve at installation",
        (
            "Samba school rehearsal",
            (
                "Drummers were banging out the rhythm while the pipes and whistles waited. Noisy neighbours "
                "asked for the session to stop by ten."
            ),
        ),
    ),
    # ---------------------------------------------------------------- cars
    C(
        "cars",
        "flat_tyre",
        ("flat tyre", Clause("tyre went flat")),
        ("puncture", "tire deflation", "punctured tire"),
        "the vehicle pulling to one side, a thumping noise and a low-pressure warning on the dashboard",
        "nails or screws penetrating the tread, damaged valves and impacts against kerbs",
        "fitting the spare wheel, plugging small tread punctures or replacing the tire",
        "checking inflation monthly, inspecting tread depth and avoiding debris on the road",
        (
            "Renting a flat in the city",
            (
                "The flat has two bedrooms and a small balcony. The landlord asks for a deposit before you move "
                "into the flat."
            ),
        ),
    ),
    C(
        "cars",
        "car_wont_start",
        (Clause("car won't start"), Clause("car just clicks when I turn the key")),
        ("starter motor failure", "ignition fault", "engine cranking fault"),
        "the engine cranking slowly or not at all, dim dashboard lamps and a single solenoid knock",
        "a discharged battery, corroded terminals, a failed starter solenoid or an immobiliser fault",
        "charging or replacing the battery, cleaning terminals and replacing the starter motor",
        "regular battery testing before winter and keeping terminals clean and tight",
        (
            "Chess club results",
            (
                "Maria won the opening game with a bold start, and the key moment came on turn twelve. The club "
                "car park closes at nine."
            ),
        ),
    ),
    C(
        "cars",
        "check_engine_light",
        ("check engine light", "orange light on the dashboard"),
        ("malfunction indicator lamp", "diagnostic trouble code", "OBD fault code"),
        "an illuminated amber symbol on the instrument cluster, sometimes flashing, with reduced performance",
        "a loose fuel cap, a failed oxygen sensor, misfires or a faulty catalytic converter",
        "reading the stored codes with an OBD scanner and repairing the component they identify",
        "routine servicing, replacing spark plugs on schedule and tightening the fuel cap after refuelling",
        (
            "Lighthouse tour",
            (
                "Check the tide times before you go. The old light engine room is open on Sundays, and the "
                "orange lens still turns."
            ),
        ),
    ),
    C(
        "cars",
        "squeaky_brakes",
        ("squeaky brakes", Clause("brakes squealing")),
        ("brake pad wear", "worn friction material", "glazed brake discs"),
        "a high-pitched noise as the wear indicator contacts the disc, longer stopping distances and scoring",
        "pads worn to the wear indicator, glazing of the friction material and corroded discs",
        "replacing the pads, skimming or replacing the discs and applying copper grease to the backing plates",
        "inspecting pad thickness at every service and avoiding prolonged heavy braking downhill",
        (
            "Pet shop guinea pigs",
            (
                "Our guinea pigs are very squeaky at feeding time. Put the brakes on an impulse buy: they need a "
                "large hutch."
            ),
        ),
        shared=("brake",),
    ),
    C(
        "cars",
        "overheating",
        (Clause("car running hot"), "temperature gauge in the red"),
        ("engine overheating", "coolant loss", "radiator failure"),
        "steam from under the bonnet, a sweet smell of coolant and a warning lamp on the instrument cluster",
        "coolant leaks, a stuck thermostat, a failed water pump or a blocked radiator",
        "topping up coolant, pressure-testing the cooling system and replacing the thermostat or water pump",
        "renewing coolant at the interval in the service schedule and inspecting hoses for cracks",
        (
            "Festival food stalls",
            (
                "The hot sauce stand is running low by noon and the red curry sold out. The narrow gauge railway "
                "cafe stays open late."
            ),
        ),
    ),
    C(
        "cars",
        "gear_grinding",
        ("grinding noise when changing gear", Clause("gears crunching")),
        ("synchromesh wear", "clutch drag", "gearbox fault"),
        "a metallic rasp when selecting a ratio and the lever jumping out of engagement",
        "worn synchroniser rings, a clutch that fails to disengage fully and low transmission fluid",
        (
            "bleeding or adjusting the clutch hydraulics, renewing transmission fluid and rebuilding the "
            "synchromesh"
        ),
        "fully depressing the clutch pedal and renewing transmission fluid at the specified interval",
        (
            "Coffee at home",
            (
                "A burr grinder makes less noise than a blade one. Changing the grinding size changes the taste, "
                "and new gear like scales helps."
            ),
        ),
    ),
    C(
        "cars",
        "pulling_to_one_side",
        (Clause("car pulls to one side"), Clause("steering drags left")),
        ("wheel misalignment", "tracking fault", "camber and toe error"),
        "an off-centre wheel when travelling straight ahead and uneven wear on the tread edges",
        "kerb impacts, worn suspension bushes and tie-rod ends, and uneven tire pressures",
        "a four-wheel alignment, adjusting toe and camber, and replacing worn suspension components",
        "avoiding kerbs and potholes and checking alignment after new tires are fitted",
        (
            "Rowing club training",
            (
                "The coach pulls the boat to one side of the river when the current drags. Sit on the left if "
                "you are new."
            ),
        ),
    ),
    C(
        "cars",
        "blue_exhaust_smoke",
        ("blue smoke from exhaust", Clause("car burning oil")),
        ("oil consumption", "piston ring wear", "valve stem seal failure"),
        "bluish-grey emissions from the tailpipe on start-up or acceleration and a falling dipstick level",
        "worn piston rings, hardened valve stem seals and a failing turbocharger",
        "replacing valve stem seals, re-ringing the pistons or rebuilding the turbocharger",
        "changing oil on schedule with the correct grade and letting the turbo idle before shutdown",
        (
            "Barbecue tips",
            (
                "Wait until the blue smoke clears before cooking. Burning fat makes soot, and the exhaust fan "
                "helps indoors."
            ),
        ),
        shared=("oil",),
    ),
    C(
        "cars",
        "high_fuel_use",
        (Clause("car uses too much petrol"), "bad gas mileage"),
        ("excessive fuel consumption", "poor fuel efficiency", "low fuel economy"),
        "more frequent refuelling, a falling trip-computer average and a strong smell of unburnt fuel",
        "under-inflated tires, a clogged air filter, faulty oxygen sensors and aggressive driving",
        "replacing the air filter and spark plugs, correcting tire inflation and repairing sensor faults",
        "smooth acceleration, removing roof racks when idle and regular servicing",
        (
            "Camping stove guide",
            ("Gas canisters beat petrol stoves in the cold. Too much wind wastes heat, so use a windshield."),
        ),
    ),
    C(
        "cars",
        "steering_wobble",
        (Clause("steering wheel shakes"), "wobbly steering at speed"),
        ("wheel imbalance", "shimmy", "warped brake rotors"),
        "vibration through the column between fifty and seventy miles per hour and scalloped tread wear",
        "lost balancing weights, bent rims, worn tie-rod ends and warped rotors",
        "dynamic balancing, straightening or replacing rims and renewing worn joints",
        "rebalancing whenever tires are replaced and avoiding potholes",
        (
            "Pottery for beginners",
            (
                "Centre the clay on the wheel before you speed up; if it shakes, slow down. A wobbly pot can "
                "still be glazed."
            ),
        ),
        shared=("wheel",),
    ),
    C(
        "cars",
        "oil_leak",
        ("puddle under the car", "dark drips on the driveway"),
        ("oil leak", "sump gasket failure", "rear main seal leak"),
        "brown spots beneath the engine bay, a burning smell and a falling dipstick level",
        "a perished sump gasket, a loose drain plug, a failed rear main seal or a cracked filter housing",
        "cleaning the engine to trace the source, then replacing the gasket, seal or drain plug washer",
        "correct torque on the drain plug and renewing gaskets during major services",
        (
            "Rainy day activities for kids",
            (
                "Jumping in every puddle is the point. Set up a den under the table, and let the drips from the "
                "umbrella land on a towel."
            ),
        ),
    ),
    # ---------------------------------------------------------------- computing
    C(
        "computing",
        "laptop_wont_turn_on",
        (Clause("laptop won't turn on"), "dead laptop"),
        ("notebook power failure", "power adapter fault", "motherboard failure"),
        "no indicator LEDs, no fan activity and a blank display when the power button is pressed",
        "a failed charger, a depleted or swollen battery, liquid damage or a shorted motherboard",
        "a hard reset, testing with a known-good adapter and replacing the battery or motherboard",
        "using the original charger, keeping liquids away from the keyboard and keeping vents clear",
        (
            "Dead Sea travel diary",
            (
                "Floating in the Dead Sea was odd. I left my laptop in the hotel and did not turn it on for four "
                "days."
            ),
        ),
    ),
    C(
        "computing",
        "slow_computer",
        ("slow computer", "PC running slow"),
        ("performance degradation", "high CPU utilisation", "memory exhaustion"),
        "long application launch times, an unresponsive interface and sustained processor load near maximum",
        "too many start-up programs, insufficient RAM, a failing hard disk and malware",
        "disabling start-up items, adding memory, replacing the disk with an SSD and removing malware",
        "regular updates, uninstalling unneeded software and monitoring resource usage",
        (
            "Slow cooker stew",
            (
                "Put the slow cooker on low for eight hours. Running late? The stew keeps well, and the library "
                "computer prints copies of the recipe."
            ),
        ),
    ),
    C(
        "computing",
        "forgot_password",
        (Clause("forgot my password"), Clause("can't log in")),
        ("credential loss", "account recovery", "authentication failure"),
        "repeated authentication errors, a temporary lockout after several attempts and expired credentials",
        "misremembered credentials, expired passphrases, caps lock and keyboard layout mismatches",
        (
            "a self-service reset via a verified email address or phone, or identity verification by an "
            "administrator"
        ),
        "a credential manager, unique passphrases and registered recovery options",
        (
            "Birthday party planning",
            (
                "I forgot the candles, so we borrowed some from next door. The password for the venue wifi is on "
                "the card, and guests can log their gifts in the book."
            ),
        ),
    ),
    C(
        "computing",
        "computer_virus",
        ("computer virus", "virus on my PC"),
        ("malware", "malicious software", "trojan infection"),
        "unexpected pop-ups, disabled security tools, unknown processes and outbound network traffic",
        "malicious email attachments, pirated software, drive-by downloads and unpatched systems",
        "isolating the machine, scanning with updated anti-malware tools and restoring from a clean backup",
        "automatic updates, endpoint protection and caution with attachments and downloads",
        (
            "Flu season at the surgery",
            (
                "The virus is spreading at the primary school, so the practice has added clinics. The computer "
                "system books vaccinations online."
            ),
        ),
    ),
    C(
        "computing",
        "wifi_dropping",
        (Clause("wifi keeps dropping"), Clause("internet keeps cutting out")),
        ("wireless connectivity loss", "WLAN disconnection", "signal interference"),
        "intermittent disconnection, fluctuating signal strength and high packet loss",
        (
            "channel congestion, interference from microwaves and neighbouring routers, distance and outdated "
            "firmware"
        ),
        "changing the channel, moving the router, updating firmware or adding mesh access points",
        "central router placement, the 5 GHz band where possible and regular firmware updates",
        (
            "Autumn garden jobs",
            (
                "Leaves keep dropping onto the lawn, so rake weekly and keep cutting back perennials until the "
                "first frost."
            ),
        ),
    ),
    C(
        "computing",
        "blue_screen",
        ("blue screen of death", "blue screen crash"),
        ("stop error", "bugcheck", "kernel panic"),
        "an abrupt halt with a stop code, an automatic restart and a memory dump written to disk",
        "faulty drivers, failing RAM, overheating and corrupted system files",
        "analysing the dump, rolling back drivers, testing memory and repairing system files",
        "installing signed drivers, keeping firmware current and monitoring temperatures",
        (
            "Film review: Blue Horizon",
            (
                "The blue tint on screen never lets up, and the death of the hero comes too early. The crash "
                "scene is the best part."
            ),
        ),
    ),
    C(
        "computing",
        "frozen_screen",
        (Clause("computer frozen"), Clause("screen froze and won't respond")),
        ("system hang", "unresponsive application", "deadlock"),
        "a cursor that no longer moves, no reaction to keyboard input and a spinning busy indicator",
        "deadlocked processes, exhausted memory, driver faults and failing storage",
        "ending the hung task, a forced restart and updating or rolling back the offending driver",
        "sufficient RAM, current drivers and avoiding too many simultaneous applications",
        (
            "Frozen desserts",
            ("The frozen yoghurt froze solid in the new freezer. Screen the berries for stems first."),
        ),
    ),
    C(
        "computing",
        "junk_mail",
        ("junk mail", "spam messages"),
        ("unsolicited bulk email", "phishing", "sender reputation filtering"),
        "unknown senders, misspelled links, urgent payment requests and mismatched reply addresses",
        "harvested addresses, data breaches and publishing an address on public web pages",
        "enabling filtering rules, reporting phishing, blocking senders and never clicking embedded links",
        "disposable addresses for sign-ups and sender authentication such as SPF and DKIM",
        (
            "Clearing out the garage",
            (
                "Take the junk to the tip on Saturday and post any mail for the old owners back to the sorting "
                "office. Spam fritters are a family favourite."
            ),
        ),
    ),
    C(
        "computing",
        "disk_full",
        (Clause("hard drive full"), Clause("no space left on my computer")),
        ("storage capacity exhaustion", "disk quota exceeded", "insufficient storage"),
        "warnings about low storage, failed saves and updates that cannot install",
        "large media libraries, temporary files, old system restore points and duplicate downloads",
        "running disk cleanup, moving media to external storage and uninstalling large applications",
        "cloud or external archiving, storage monitoring and automatic clearing of temporary files",
        (
            "Road trip playlist",
            (
                "Drive north with the windows down and a full tank. There is space left on the hard shoulder "
                "near the services."
            ),
        ),
    ),
    C(
        "computing",
        "deleted_files",
        (Clause("accidentally deleted my documents"), Clause("lost my photos")),
        ("data loss", "data recovery", "file restoration"),
        "missing folders, an emptied recycle bin and applications reporting unreadable items",
        "mistaken removal, formatting the wrong drive, sync conflicts and storage failure",
        "stopping writes to the drive, running recovery software and restoring from backup or version history",
        "the 3-2-1 backup rule, version history in cloud storage and confirmation prompts",
        (
            "Holiday scrapbook",
            (
                "We lost the map in Rome but kept the photos. The deleted scenes on the film disc were fun, and "
                "the travel documents are sorted by date."
            ),
        ),
    ),
    C(
        "computing",
        "phone_battery_drain",
        (Clause("phone battery dies fast"), Clause("battery runs out quickly")),
        ("excessive power consumption", "battery degradation", "background power drain"),
        "rapid percentage drops, the handset running warm and reduced standby time",
        "background apps, high screen brightness, weak signal and lithium-ion cell ageing",
        "restricting background activity, lowering brightness, updating software and replacing the cell",
        "avoiding full discharge and heat, and enabling adaptive power saving",
        (
            "Remote-control car club",
            (
                "The battery on the buggy dies fast in the cold, so bring spares. Races run out to the quarry "
                "track and back."
            ),
        ),
        shared=("batteri", "run"),
    ),
    C(
        "computing",
        "cracked_phone_screen",
        ("cracked phone screen", "smashed screen"),
        ("display damage", "digitizer damage", "shattered LCD assembly"),
        "fractured glass, dead touch zones, a flickering display and lines across the panel",
        "drops onto hard surfaces, pressure in a pocket and impacts on the corners",
        "replacing the display and digitizer assembly, or the glass alone on some models",
        "a tempered glass protector and a shock-absorbing case",
        (
            "Bakery order line",
            (
                "Phone ahead for cracked wheat loaves; smashed avocado toast is served until noon. The screen "
                "door sticks, so push hard."
            ),
        ),
    ),
    # ---------------------------------------------------------------- cooking
    C(
        "cooking",
        "cake_sinking",
        (Clause("cake sank in the middle"), "sunken cake"),
        ("underbaked sponge", "structural collapse during baking", "excess leavening"),
        "a dense, gummy band in the centre of the sponge and a crater after cooling",
        "opening the oven door too early, too much raising agent, underbaking and an oven running cool",
        "measuring raising agents precisely, testing with a skewer and calibrating the oven with a thermometer",
        (
            "an oven thermometer, weighing ingredients and keeping the door shut for the first two-thirds of "
            "the bake"
        ),
        (
            "Village regatta",
            (
                "A dinghy sank in the middle of the harbour, and the sunken hull was raised by the club. Cake "
                "and tea at the clubhouse afterwards."
            ),
        ),
    ),
    C(
        "cooking",
        "bread_not_rising",
        (Clause("bread didn't rise"), Clause("dough not rising")),
        ("proofing failure", "inactive yeast", "insufficient fermentation"),
        "a dense crumb, a loaf with little oven spring and a pale, tight crust",
        "expired yeast, water that is too hot, excess salt and a cold proving environment",
        "proofing the yeast first, warming the proving area and allowing a longer bulk fermentation",
        "checking yeast dates, measuring water temperature and keeping salt away from the yeast",
        (
            "Sunrise hike",
            (
                "We watched the sun rise over the ridge with bread rolls and coffee, and the summit cafe sells "
                "cookie dough ice cream."
            ),
        ),
    ),
    C(
        "cooking",
        "split_sauce",
        ("curdled sauce", Clause("sauce has split")),
        ("broken emulsion", "emulsion separation", "re-emulsification"),
        "visible droplets of fat, a greasy sheen and a grainy, separated texture",
        "adding oil too quickly, overheating egg-based emulsions and ingredients at mismatched temperatures",
        "whisking the mixture drop by drop into a fresh yolk or a spoonful of warm water",
        "adding fat gradually, gentle heat and ingredients at room temperature",
        (
            "Pasta night",
            (
                "Split the group into two teams: one makes the sauce, the other the salad. Curdled milk goes "
                "straight in the bin."
            ),
        ),
    ),
    C(
        "cooking",
        "soggy_pastry",
        ("soggy bottom on a pie", "wet pastry base"),
        ("underbaked crust", "moisture migration", "insufficient blind baking"),
        "a pale, damp underside and a crust that tears when sliced",
        "a juicy filling, too low an oven temperature and no blind bake beforehand",
        "blind baking with ceramic beans, sealing with egg wash and baking on a preheated tray",
        "a hot preheated baking sheet, thickened fruit fillings and a metal tin rather than ceramic",
        (
            "Fishing trip",
            (
                "My boots were soggy by noon and the bottom of the boat was wet. The pie from the harbour shop "
                "was excellent."
            ),
        ),
    ),
    C(
        "cooking",
        "mushy_rice",
        ("mushy rice", "sticky clumpy rice"),
        ("overcooked grains", "starch gelatinization", "overhydration"),
        "burst grains, a gluey texture and a starchy paste on the pan base",
        "too much water, excess stirring that releases starch and overcooking",
        "rinsing grains, measuring a precise water ratio and resting covered off the heat",
        "the absorption method, rinsing until the water runs clear and not stirring while simmering",
        (
            "Rice paddies of Bali",
            (
                "The terraces were mushy after the rain, and sticky heat followed us all day. Rice wine with "
                "dinner."
            ),
        ),
        shared=("rice",),
    ),
    C(
        "cooking",
        "food_going_off",
        (Clause("food going bad"), Clause("leftovers going off")),
        ("spoilage", "microbial growth", "shelf-life expiry"),
        "sour odours, sliminess, visible mould and discoloration",
        "bacterial and fungal growth at room temperature, oxidation and poor sealing",
        "discarding spoiled items, cleaning the refrigerator and checking its temperature",
        "refrigerating within two hours, airtight containers and the first-in first-out rule",
        (
            "Gig review",
            (
                "The band was going well until the sound went off halfway through. Bad luck, but the leftover "
                "merchandise sold out after the encore."
            ),
        ),
    ),
    C(
        "cooking",
        "tough_meat",
        ("tough chewy meat", "steak too chewy"),
        ("unrendered collagen", "connective tissue", "overcooked muscle fibres"),
        "dense fibres that resist slicing, dryness and a rubbery texture",
        "cooking collagen-rich cuts too fast, slicing with the grain and overcooking lean cuts",
        "slow braising until collagen converts to gelatin, slicing against the grain and resting after cooking",
        "matching the cut to the method, marinating and using a probe thermometer",
        (
            "Obstacle race training",
            ("Training was tough: chewy energy bars, muddy hills and no steak dinner until Sunday."),
        ),
    ),
    C(
        "cooking",
        "freezer_burn",
        ("freezer burn", "ice crystals on frozen food"),
        ("sublimation", "dehydration", "oxidative damage"),
        "greyish-brown leathery patches, dry spots and stale flavours",
        "moisture sublimating from the surface when packaging lets air reach the product",
        "trimming affected areas before cooking, since the product remains safe to eat",
        "vacuum sealing, removing air from bags and keeping a steady minus eighteen degrees",
        (
            "Ice hockey camp",
            (
                "Skaters felt the burn after drills on the ice. Frozen ponds are off limits, and frost crystals "
                "covered the van."
            ),
        ),
    ),
    C(
        "cooking",
        "rusty_pan",
        ("rusty frying pan", Clause("pan going rusty")),
        ("cast iron oxidation", "seasoning loss", "skillet corrosion"),
        "orange-brown spots, a rough surface and food sticking to the skillet",
        "soaking cast iron in water, dishwashers and stripping the seasoning with harsh detergent",
        "scouring the oxide away, drying over heat and re-seasoning with a thin coat of oil baked at high heat",
        "drying the skillet immediately and wiping on a thin film of oil after each use",
        (
            "Old bicycle restoration",
            (
                "The rusty chain needed replacing, and the frying sun made the old grease go sticky. Peter Pan "
                "stickers on the frame stayed."
            ),
        ),
    ),
    C(
        "cooking",
        "cookies_spreading",
        (Clause("cookies went flat"), Clause("biscuits come out thin")),
        ("excessive spread", "fat-to-flour imbalance", "unchilled dough"),
        "lacy, brittle edges, a greasy base and rounds that merge on the tray",
        "softened or melted butter, too little flour, warm trays and excess sugar",
        "chilling the mixture, weighing flour and baking on cool lined sheets",
        "resting the mixture in the refrigerator before baking and using an oven thermometer",
        (
            "Browser privacy settings",
            (
                "Clear cookies weekly. Flat-rate VPNs come cheap, and thin clients went out of fashion years ago."
            ),
        ),
    ),
    # ---------------------------------------------------------------- gardening
    C(
        "gardening",
        "greenfly",
        ("greenfly", "little green bugs on roses"),
        ("aphids", "aphid infestation", "sap-sucking insects"),
        "clusters of soft-bodied insects on shoot tips, curled foliage and sticky honeydew",
        "mild springs, excess nitrogen fertiliser and a shortage of natural predators",
        "squashing colonies, a jet of water, insecticidal soap and encouraging ladybirds",
        "encouraging predators, avoiding overfeeding with nitrogen and regular inspection",
        (
            "Office plant rota",
            (
                "The little green watering can is by the sink. Bugs in the ticket system go to IT, and the roses "
                "on reception need water."
            ),
        ),
    ),
    C(
        "gardening",
        "yellow_leaves",
        (Clause("leaves turning yellow"), "yellowing plant"),
        ("chlorosis", "nitrogen deficiency", "iron deficiency"),
        "pale foliage with green veins, stunted growth and older foliage fading first",
        "nutrient deficiency, waterlogged roots, alkaline soil locking up iron and overwatering",
        "a balanced fertiliser, chelated iron for lime-sensitive species and improving drainage",
        "regular feeding, soil pH testing and avoiding waterlogging",
        (
            "Autumn rail journeys",
            (
                "The leaves were turning as the train climbed, with yellow and red forests everywhere. The plant "
                "museum at the terminus is free."
            ),
        ),
    ),
    C(
        "gardening",
        "powdery_mildew",
        ("white powder on leaves", "white fuzzy coating on plants"),
        ("powdery mildew", "fungal disease", "Erysiphales infection"),
        "a pale dusty film on upper foliage, distorted shoots and premature leaf drop",
        "airborne fungal spores thriving when roots are dry, the air is humid and growth is crowded",
        "removing infected growth, improving airflow and applying sulphur or potassium bicarbonate sprays",
        "resistant cultivars, adequate spacing and watering at the base in the morning",
        (
            "Ski resort report",
            (
                "Fresh white powder fell overnight, with a fuzzy coating on the pines. Lift passes are on sale "
                "and the leaves of the lodge door are open."
            ),
        ),
    ),
    C(
        "gardening",
        "slugs",
        (Clause("slugs eating my plants"), Clause("snails eating lettuce")),
        ("gastropod damage", "molluscs", "molluscicide"),
        "irregular holes in foliage, silvery mucus trails and young shoots grazed to the stem",
        "damp mild weather, dense ground cover and hiding places such as boards and pots",
        "ferric phosphate pellets, nematode biological control and hand-picking at dusk",
        "copper barriers, gritty mulches, watering in the morning and encouraging hedgehogs and birds",
        (
            "Web publishing basics",
            ("Each article gets a URL slug, and short slugs read best. Eating lunch at your desk is fine."),
        ),
    ),
    C(
        "gardening",
        "droopy_plants",
        ("droopy plants", Clause("plant flopping over")),
        ("wilting", "water stress", "root rot"),
        "limp foliage, soft stems and soil that is either bone dry or waterlogged",
        "drought, overwatering that suffocates roots, root rot fungi and transplant shock",
        "deep watering of dry soil, or repotting into fresh free-draining mix where roots are rotting",
        "watering to soil moisture rather than a timetable and pots with drainage holes",
        (
            "Power station visit",
            (
                "The plant manager, droopy moustache and all, showed us the turbines. A tired volunteer was "
                "flopping over the railings by four."
            ),
        ),
    ),
    C(
        "gardening",
        "blossom_end_rot",
        ("black bottoms on tomatoes", Clause("tomatoes going black underneath")),
        ("blossom end rot", "calcium deficiency", "irregular irrigation"),
        "sunken leathery patches at the blossom end of the fruit, darkening as they enlarge",
        "calcium deficiency in developing fruit caused by uneven watering",
        "removing affected fruit and establishing a consistent irrigation routine",
        "regular deep watering, mulching to hold soil moisture and avoiding excessive nitrogen",
        (
            "Rock climbing for beginners",
            (
                "Black rubber bottoms on climbing shoes grip best. The tomato soup at the crag cafe is going "
                "cheap."
            ),
        ),
    ),
    C(
        "gardening",
        "leggy_seedlings",
        ("leggy seedlings", "tall skinny seedlings"),
        ("etiolation", "insufficient light", "elongated stems"),
        "long pale stems, widely spaced nodes and young growth toppling over",
        "low light levels on windowsills, excessive warmth and sowing too early",
        "moving trays to brighter positions, supplementary grow lights and burying stems deeper at potting on",
        (
            "sowing later in spring, grow lights for fourteen hours a day and cooler temperatures after "
            "germination"
        ),
        (
            "Fashion week notes",
            (
                "Tall, leggy models in skinny jeans opened the show, and the seedlings of a new trend were there."
            ),
        ),
    ),
    C(
        "gardening",
        "smelly_compost",
        ("smelly compost", Clause("compost heap stinks")),
        ("anaerobic decomposition", "poor aeration", "nitrogen excess"),
        "an ammonia or rotten-egg odour, a wet slimy mass and flies",
        "excess nitrogen-rich green waste, waterlogging and lack of oxygen in a compacted pile",
        "turning the pile, mixing in shredded cardboard and adding coarse woody material",
        "balancing greens with browns, turning regularly and covering the bin in heavy rain",
        (
            "Cheese board guide",
            (
                "Smelly cheeses like Epoisses go on the left and a heap of grapes in the middle. The compost bin "
                "takes the rinds."
            ),
        ),
    ),
    C(
        "gardening",
        "brown_lawn_patches",
        ("brown patches on the lawn", "dead grass patches"),
        ("turf dormancy", "chafer grub damage", "drought stress"),
        "straw-coloured areas of sward that lift easily, with grubs visible beneath",
        "drought, chafer and leatherjacket larvae, dog urine and fungal disease",
        "watering deeply, nematode treatment for larvae, scarifying and overseeding",
        "mowing higher in summer, aerating compacted areas and autumn feeding",
        (
            "Repairing jeans",
            ("Iron-on brown patches cover the knees, and the grass stains came out. Dead easy."),
        ),
    ),
    C(
        "gardening",
        "plants_not_flowering",
        (Clause("plants not flowering"), Clause("no flowers this year")),
        ("poor bloom", "bud set failure", "excessive nitrogen"),
        "healthy foliage with few or no buds, and buds that drop before opening",
        "pruning at the wrong time, excess nitrogen, insufficient sun and immaturity",
        "a high-potash feed, pruning immediately after bloom and moving specimens to a sunnier site",
        "learning the pruning timing for each species and feeding with potash rather than nitrogen",
        (
            "Wedding planning",
            ("No flowers on the tables this year; we chose candles. Plants in pots line the aisle."),
        ),
    ),
    # ---------------------------------------------------------------- finance
    C(
        "finance",
        "going_bankrupt",
        (Clause("going bankrupt"), Clause("can't pay my debts")),
        ("insolvency", "creditor arrangement", "liquidation"),
        "liabilities exceeding assets, missed creditor deadlines and new borrowing to service old obligations",
        "falling income, unmanageable borrowing, business losses and unexpected large expenses",
        "an individual voluntary arrangement, a formal insolvency procedure or negotiation with creditors",
        "an emergency reserve, cautious borrowing and early advice when obligations become hard to meet",
        (
            "Theatre listings",
            ("Going Bankrupt, a comedy about a failing bakery, opens on Friday. You can pay at the door."),
        ),
    ),
    C(
        "finance",
        "rising_prices",
        (Clause("prices going up"), Clause("everything getting more expensive")),
        ("inflation", "CPI", "purchasing power erosion"),
        "a rising consumer index, shrinking real wages and higher interest rates",
        "demand outstripping supply, energy shocks, currency depreciation and loose monetary policy",
        "central banks raising interest rates and governments tightening fiscal policy",
        "credible central bank targets and steady growth in the money supply",
        (
            "Hot air balloon flights",
            (
                "The balloon keeps going up until the pilot vents, and everything below looks small. Ticket "
                "prices vary by season."
            ),
        ),
    ),
    C(
        "finance",
        "bad_credit",
        ("bad credit", Clause("banks won't lend to me")),
        ("poor creditworthiness", "adverse credit history", "credit file defaults"),
        "declined applications, higher offered interest rates and default markers on the file",
        "missed repayments, high utilisation of available limits, court judgments and frequent applications",
        "registering on the electoral roll, clearing arrears and correcting errors with the reference agencies",
        "paying on time by direct debit, keeping utilisation below thirty per cent and spacing applications",
        (
            "Film credits",
            (
                "Bad weather delayed filming, and the credit for the stunts goes to the local team. Lend me your "
                "umbrella."
            ),
        ),
        shared=("credit",),
    ),
    C(
        "finance",
        "mortgage_arrears",
        (Clause("behind on my house payments"), Clause("can't afford my home loan")),
        ("mortgage arrears", "repossession risk", "mortgage default"),
        "missed monthly instalments, arrears letters from the lender and default notices",
        "income loss, rising variable interest rates and relationship breakdown",
        "forbearance such as a temporary interest-only period, a term extension or capitalising the arrears",
        "fixed-rate products, income protection insurance and an emergency reserve",
        (
            "Street party",
            (
                "The house band played behind the stage and everyone took something home. Can you afford a "
                "tombola ticket?"
            ),
        ),
    ),
    C(
        "finance",
        "identity_theft",
        (Clause("someone pretending to be me"), Clause("stranger using my details")),
        ("identity fraud", "impersonation", "identity theft"),
        "unfamiliar credit searches, statements for unknown agreements and missing post",
        "data breaches, phishing, stolen post and oversharing personal information online",
        (
            "contacting lenders, filing a police report, placing a protective registration and reviewing the "
            "credit file"
        ),
        (
            "shredding documents, strong unique credentials, redirecting post when moving and monitoring the "
            "credit file"
        ),
        (
            "Masked ball",
            (
                "Someone pretending to be the butler served drinks, and a stranger asked for my details for the "
                "raffle."
            ),
        ),
    ),
    C(
        "finance",
        "overdraft",
        (Clause("going into the red"), Clause("spending more than is in my account")),
        ("unarranged overdraft", "negative balance", "insufficient funds fee"),
        "a negative balance on statements, returned direct debits and daily usage fees",
        "timing mismatches between income and bills, forgotten subscriptions and unplanned purchases",
        "moving to an arranged facility, transferring funds and asking the bank to refund charges",
        "low-balance alerts, a monthly budget and a buffer of savings",
        (
            "Sailing lessons",
            (
                "Red over green marks the buoy, and going into harbour at dusk is magical. Spending a week at "
                "sea teaches more than any book."
            ),
        ),
    ),
    C(
        "finance",
        "scam_call",
        ("scam phone call asking for bank details", Clause("caller pretending to be my bank")),
        ("vishing", "authorised push payment fraud", "social engineering"),
        "urgent pressure to move funds, requests for one-time passcodes and a spoofed institution number",
        "criminals exploiting leaked personal data and number spoofing technology",
        "hanging up, contacting the institution on a verified number and reporting the fraud promptly",
        "never sharing passcodes, confirmation of payee checks and a family code word",
        (
            "Theatre box office",
            (
                "Call the box office to ask for seat details; the phone line opens at ten. Scam artists are the "
                "villains of Act Two."
            ),
        ),
    ),
    C(
        "finance",
        "stock_crash",
        (Clause("stocks crashing"), Clause("lost money on shares")),
        ("market downturn", "bear market", "portfolio drawdown"),
        "indices falling more than twenty per cent from their peak, rising volatility and widening spreads",
        "recession fears, rising interest rates, asset bubbles and panic selling",
        "staying diversified, rebalancing and avoiding forced sales of equities at the bottom",
        "diversification across asset classes, an emergency reserve and a long investment horizon",
        (
            "Restaurant kitchen rota",
            (
                "Chicken stock goes at the front, and the crashing of pans means service has begun. Shares of "
                "the tips are split weekly."
            ),
        ),
    ),
    C(
        "finance",
        "card_cloning",
        (Clause("card cloned at a cash machine"), Clause("money taken from my card")),
        ("skimming", "ATM fraud", "unauthorised transaction"),
        "unrecognised transactions, small test withdrawals and declines when funds should be available",
        "skimming devices and hidden cameras fitted to ATMs and point-of-sale terminals",
        (
            "reporting to the issuer, blocking the account number and claiming a refund under fraud protection "
            "rules"
        ),
        "covering the keypad, checking terminals for loose fittings and contactless or mobile wallets",
        (
            "Sheep farming history",
            ("Dolly the sheep was cloned in 1996. The cash machine at the agricultural show takes any card."),
        ),
    ),
    C(
        "finance",
        "payday_loan",
        ("loan shark", "borrowing until next wages"),
        ("payday lending", "high-cost short-term credit", "predatory lending"),
        "annual percentage rates of several hundred per cent, rollover offers and aggressive collection",
        "income shocks, poor access to mainstream credit and urgent expenses",
        (
            "credit union alternatives, free advice services and challenging unaffordable lending via the "
            "ombudsman"
        ),
        "an emergency reserve, credit union membership and budgeting for irregular expenses",
        (
            "Aquarium visit",
            (
                "The shark tunnel was the highlight. The gift shop runs a loan scheme so school groups can "
                "borrow binoculars."
            ),
        ),
    ),
    # ---------------------------------------------------------------- travel
    C(
        "travel",
        "jet_lag",
        ("jet lag",),
        ("circadian rhythm disruption", "desynchronosis", "time zone adjustment"),
        "daytime fatigue, night-time waking, poor concentration and digestive upset after crossing time zones",
        "rapid travel across several time zones desynchronising the body clock from local daylight",
        "timed daylight exposure, short naps and low-dose melatonin at the local bedtime",
        "shifting bedtime gradually before departure and adopting destination meal times on board",
        (
            "Online gaming tips",
            (
                "Lag spikes ruin ranked matches, and a jet black mouse pad will not help. Use a wired connection."
            ),
        ),
    ),
    C(
        "travel",
        "motion_sickness",
        (Clause("queasy on boats"), Clause("carsick")),
        ("motion sickness", "kinetosis", "vestibular mismatch"),
        "nausea, pallor, cold sweating and vomiting during travel",
        "conflict between visual input and signals from the vestibular system in the inner ear",
        "fixing the gaze on the horizon, fresh air and antihistamines such as hyoscine or cinnarizine",
        "sitting amidships or in the front seat, avoiding reading in transit and taking medication beforehand",
        (
            "Rowing boats for hire",
            (
                "Boats can be hired by the hour and the lake is calm. Queasy about deep water? Try the pedalos."
            ),
        ),
    ),
    C(
        "travel",
        "lost_luggage",
        ("lost luggage", Clause("suitcase didn't arrive")),
        ("mishandled baggage", "delayed baggage claim", "property irregularity report"),
        "an empty carousel, a missing tag trace and no record of the bag at the destination",
        "short transfer times, misread tags and routing errors at hub airports",
        "filing a property irregularity report at the airport and claiming essential expenses from the carrier",
        "direct flights, tracking tags, clear labels and carrying essentials in cabin bags",
        (
            "Lost property office",
            (
                "Lost umbrellas pile up after rain. Luggage lockers at the station take coins, and the train "
                "didn't arrive on time."
            ),
        ),
    ),
    C(
        "travel",
        "missed_connection",
        (Clause("missed my connecting flight"), "missed connection"),
        ("misconnection", "broken itinerary", "interline transfer failure"),
        (
            "an inbound delay that leaves less than the minimum transfer time and a closed gate for the onward "
            "sector"
        ),
        "late inbound arrivals, short scheduled layovers and long security queues at transfer",
        "automatic rebooking by the carrier on a through ticket, with meals and hotel vouchers where needed",
        "booking on a single ticket and allowing generous layovers at large hubs",
        (
            "Dating app advice",
            ("If you missed a connection with someone at a party, the app has a missed connection board."),
        ),
    ),
    C(
        "travel",
        "overbooked_flight",
        (Clause("flight overbooked"), Clause("bumped off my flight")),
        ("denied boarding", "oversale", "involuntary offload"),
        "a gate agent requesting volunteers and no seat assignment at check-in",
        "airlines selling more seats than available to offset expected no-shows",
        "statutory compensation, rerouting at the earliest opportunity and meals or accommodation",
        "checking in online early, holding a seat assignment and frequent flyer status",
        (
            "Hotel review",
            (
                "The hotel was overbooked so we were bumped to a suite. The flight of stairs to the roof terrace "
                "is steep."
            ),
        ),
    ),
    C(
        "travel",
        "passport_lost",
        (Clause("lost my passport abroad"), Clause("passport stolen on holiday")),
        ("emergency travel document", "consular assistance", "embassy"),
        "an empty document wallet, a police theft report and no valid identification for the return journey",
        "pickpocketing in crowded places, hotel room theft and misplacing documents in transit",
        "reporting to local police and applying at the nearest embassy or consulate for an emergency document",
        "hotel safes, photocopies of documents and keeping identification in a front pocket",
        (
            "Holiday photo contest",
            ("Send your best holiday photos; entries from abroad are welcome. Stolen moments win prizes."),
        ),
    ),
    C(
        "travel",
        "roaming_charges",
        ("huge phone bill after holiday", "phone costs abroad"),
        ("roaming charges", "international roaming", "data roaming"),
        "itemised charges for data used outside the home network and usage alerts from the operator",
        "mobile data left on, automatic app updates and networks outside inclusive roaming zones",
        "disputing charges with the operator and applying a roaming cap retroactively where offered",
        "a local SIM or eSIM, disabling data roaming and a spending cap with the operator",
        (
            "Birdwatching weekend",
            (
                "The huge bill of the pelican impressed everyone. The phone signal abroad was poor, so costs "
                "were low."
            ),
        ),
    ),
    C(
        "travel",
        "sunburn",
        ("sunburn", "burnt skin after the beach"),
        ("erythema", "ultraviolet radiation injury", "solar dermatitis"),
        "erythema, tenderness, blistering in severe cases and later desquamation",
        "overexposure to ultraviolet B radiation, especially at midday and at altitude",
        "cool compresses, aloe vera, oral analgesics and fluids, with medical care for extensive blistering",
        "broad-spectrum SPF thirty or higher, reapplication every two hours and shade at midday",
        ("Beach bonfire night", "Burnt marshmallows on the beach, and the DJ set got under everyone's skin."),
    ),
    C(
        "travel",
        "flight_delay_compensation",
        (Clause("flight was late, can I get money back"), "refund for late plane"),
        ("delay compensation", "air passenger rights", "EU261"),
        "arrival more than three hours after schedule for a reason within the carrier's control",
        "crew shortages, technical faults and air traffic control restrictions",
        "claiming fixed compensation from the operating carrier under EU261 and escalating to the regulator",
        "morning departures, direct routes and avoiding carriers with poor punctuality",
        (
            "Paper plane contest",
            (
                "Our plane was late to land but won on distance. Money back if your plane breaks before the "
                "final."
            ),
        ),
    ),
    # ---------------------------------------------------------------- pets
    C(
        "pets",
        "itchy_dog",
        (Clause("dog keeps scratching"), "itchy dog"),
        ("canine pruritus", "flea allergy dermatitis", "atopic dermatitis"),
        "persistent licking, hair loss, reddened skin and scabs along the back",
        "flea allergy, environmental allergens, dietary hypersensitivity and mites",
        "monthly parasite control, medicated shampoos and anti-itch medication",
        "year-round flea treatment for every animal in the household and regular grooming",
        (
            "Vinyl record care",
            ("A dog-eared sleeve keeps scratching the vinyl, and an itchy wool jumper is no record cloth."),
        ),
    ),
    C(
        "pets",
        "hairballs",
        (Clause("cat coughing up hairballs"), "furballs"),
        ("trichobezoar", "hair ingestion", "gastric hair accumulation"),
        "retching, hacking and tubular wads of fur expelled after grooming",
        "fur swallowed during self-grooming, especially in long-haired breeds and during moulting",
        "lubricant laxative pastes, high-fibre diets and veterinary assessment for repeated vomiting",
        "daily brushing, specially formulated diets and adequate hydration",
        (
            "Jazz club review",
            (
                "The cat on saxophone kept coughing between solos, but the band was tight. Furballs of dust "
                "under the stage."
            ),
        ),
    ),
    C(
        "pets",
        "dog_bad_breath",
        (Clause("dog's breath stinks"), "smelly dog breath"),
        ("canine halitosis", "periodontal disease", "dental plaque"),
        "foul oral odour, tartar on the teeth, red gums and reluctance to chew",
        "plaque bacteria, gingivitis, retained deciduous teeth and oral foreign bodies",
        "scaling and polishing under anaesthesia, extractions where needed and antiseptic gels",
        "daily tooth brushing with enzymatic paste, dental chews and annual check-ups",
        (
            "Yoga class",
            (
                "Breath work comes first, then the downward dog stretches the spine. The studio smells of "
                "incense, never smelly."
            ),
        ),
    ),
    C(
        "pets",
        "firework_fear",
        (Clause("dog terrified of fireworks"), Clause("dog hides during fireworks")),
        ("noise phobia", "noise aversion", "sound sensitivity"),
        "trembling, panting, pacing, cowering and attempts to escape during loud bangs",
        "genetic sensitivity, lack of early exposure to sounds and a previous frightening event",
        "a safe den, pheromone diffusers, prescribed anxiolytics and behavioural therapy",
        "gradual desensitisation with recorded sounds and counter-conditioning in puppyhood",
        (
            "New Year on the waterfront",
            (
                "Fireworks start at midnight. We were terrified of losing the kids, so each one hides a map in a "
                "pocket."
            ),
        ),
    ),
    C(
        "pets",
        "cat_litter_problems",
        (Clause("cat peeing outside the litter box"), Clause("cat weeing on the carpet")),
        ("inappropriate elimination", "periuria", "feline lower urinary tract disease"),
        "urine deposits on soft furnishings, straining and frequent small voids",
        "cystitis, bladder stones, a dirty or badly placed tray and stress from other animals",
        "urinalysis, treatment of urinary disease, enzymatic cleaners and more trays in quiet places",
        "one tray per animal plus one, daily cleaning and reducing household stress",
        (
            "Beach clean-up day",
            (
                "Litter pickers and a box of gloves are provided. The carpet shop outside the station lends a "
                "van."
            ),
        ),
    ),
    C(
        "pets",
        "overweight_dog",
        (Clause("dog is too fat"), "overweight dog"),
        ("canine obesity", "excess body condition", "adiposity"),
        "ribs that are hard to feel, no visible waist and reduced exercise tolerance",
        "excess treats, overfeeding, metabolic changes after neutering and inactivity",
        "a measured reducing diet, gradual increases in exercise and monthly weigh-ins",
        "weighing meals, limiting treats to ten per cent of daily calories and daily walks",
        (
            "Sausage festival",
            ("The fat sausages sold out first, and an overweight hot dog eating champion took the trophy."),
        ),
    ),
    C(
        "pets",
        "dog_worms",
        (Clause("dog has worms"), "worms in my puppy's poo"),
        ("intestinal parasites", "helminth infection", "helminthiasis"),
        "a pot-bellied appearance, scooting, weight loss and segments visible around the anus",
        "ingesting larvae from contaminated soil, fleas carrying tapeworm and transmission from the dam",
        "broad-spectrum anthelmintics repeated at the recommended interval",
        "regular deworming, flea control and prompt disposal of faeces",
        (
            "Composting with a wormery",
            (
                "Worms turn kitchen scraps into rich castings, and puppy training pads make good bedding liners."
            ),
        ),
    ),
    C(
        "pets",
        "cat_not_eating",
        (Clause("cat won't eat"), Clause("cat off its food")),
        ("feline anorexia", "inappetence", "hepatic lipidosis"),
        "refusal of meals for more than a day, weight loss, lethargy and withdrawal",
        "dental pain, kidney disease, nausea, stress and a sudden diet change",
        "appetite stimulants, treating the underlying disease and assisted feeding by tube if needed",
        "gradual diet transitions, regular dental checks and a calm feeding spot",
        (
            "Musical theatre review",
            (
                "Cats returns to the West End and the cast won rave reviews. Eat at the theatre bar before the "
                "show."
            ),
        ),
    ),
)

# ---------------------------------------------------------------- templates (formal register)

TITLES: dict[str, tuple[str, ...]] = {
    "signs": ("{F}: recognition and assessment", "Identifying {F}", "Indicators of {F}", "{F}: presentation"),
    "causes": (
        "Contributory factors in {F}",
        "{F}: origins and risk factors",
        "Mechanisms of {F}",
        "Why {F} occurs",
    ),
    "remedy": (
        "Management of {F}",
        "{F}: corrective measures",
        "Resolving {F}",
        "Intervention options for {F}",
    ),
    "prevention": (
        "Preventing {F}",
        "{F}: prevention and maintenance",
        "Reducing the risk of {F}",
        "Long-term control of {F}",
    ),
}

OPENINGS: dict[str, tuple[str, ...]] = {
    "signs": (
        "Typical indicators of {F} include {fact}.",
        "{F} is usually recognised by {fact}.",
        "{Experts} identify {F} from {fact}.",
        "The characteristic features of {F} are {fact}.",
        "In most cases {F} manifests as {fact}.",
    ),
    "causes": (
        "{F} usually results from {fact}.",
        "{Experts} attribute most cases of {F} to {fact}.",
        "The principal origin of {F} is {fact}.",
        "{F} develops as a consequence of {fact}.",
        "Contributing factors for {F} include {fact}.",
    ),
    "remedy": (
        "Standard management of {F} involves {fact}.",
        "{Experts} generally address {F} through {fact}.",
        "Resolving {F} typically requires {fact}.",
        "The recommended intervention for {F} is {fact}.",
        "Effective correction of {F} relies on {fact}.",
    ),
    "prevention": (
        "The likelihood of {F} is reduced by {fact}.",
        "{Experts} recommend {fact} to prevent {F}.",
        "Preventive measures against {F} include {fact}.",
        "Recurrence of {F} is uncommon with {fact}.",
        "A sound preventive routine for {F} combines {fact}.",
    ),
}

FACET_SUPPORT: dict[str, tuple[str, ...]] = {
    "signs": (
        "Early recognition of {F} shortens the time to an effective intervention.",
        "Careful inspection usually distinguishes {F} from similar problems.",
    ),
    "causes": (
        "Understanding the mechanism of {F} guides the choice of intervention.",
        "Several of these factors often act together in {F}.",
    ),
    "remedy": (
        "Outcomes following intervention for {F} are generally favourable.",
        "Follow-up confirms complete resolution of {F}.",
    ),
    "prevention": (
        "Prevention of {F} is far cheaper compared with later correction.",
        "Periodic review minimises the risk of {F}.",
    ),
}

SUPPORT: tuple[str, ...] = (
    "In {literature}, {F} is also described as {F2}.",
    "{F2} is the term {experts} often apply to the same problem.",
    "{F} represents a notable proportion of {caseload}.",
    "A {expert} should be consulted when {F} persists or recurs.",
    "Reference texts list {F} alongside {F2} as a single entry.",
)

LAY_MENTIONS: tuple[str, ...] = (
    'In everyday speech {F} is usually called "{L}".',
    'Many people simply describe {F} as "{L}".',
    'Non-specialists tend to refer to {F} as "{L}".',
)

# ---------------------------------------------------------------- templates (lay register)

NOUN_QUERY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "signs": (
        "signs of {L}",
        "how to tell if it's {L}",
        "{L} warning signs",
        "what does {L} look like",
        "is this {L}? how can I tell",
        "early signs of {L}",
        "how do I know it's {L}",
    ),
    "causes": (
        "what causes {L}",
        "why does {L} happen",
        "reasons for {L}",
        "{L} causes",
        "why do I keep getting {L}",
        "what leads to {L}",
    ),
    "remedy": (
        "how to fix {L}",
        "what to do about {L}",
        "best way to deal with {L}",
        "{L} what helps",
        "getting rid of {L}",
        "how to sort out {L}",
        "{L} how to treat it",
    ),
    "prevention": (
        "how to avoid {L}",
        "how to stop {L} happening",
        "preventing {L}",
        "ways to avoid {L}",
        "tips to stop {L}",
        "can you prevent {L}",
    ),
}

CLAUSE_QUERY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "signs": (
        "{L}, how can I be sure",
        "{L} what are the signs",
        "{L} what to look for",
        "{L} how to tell what is wrong",
    ),
    "causes": ("why {L}", "{L} why does this happen", "{L} what causes this", "reasons why {L}"),
    "remedy": ("{L} how to fix", "{L} what to do", "{L} what can I do", "help, {L}"),
    "prevention": (
        "{L} how to stop it happening again",
        "{L} how to prevent this",
        "{L} how to avoid this",
        "{L} tips to prevent it",
    ),
}


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    concept: str | None  # None for distractors
    facet: str | None


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    concept: str
    facet: str
    split: str


@dataclass(frozen=True)
class Collection:
    documents: list[Document]
    queries: list[Query]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}


CONCEPT_BY_KEY = {c.key: c for c in CONCEPTS}

_STEMMER = Stemmer.Stemmer("english")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOP = frozenset(bm25s.stopwords.STOPWORDS_EN)
# Function words that BM25 keeps (its English list is short) but that carry no topic: the gap check
# ignores them.
_FUNCTION_STEMS = frozenset(_STEMMER.stemWords(["when", "from", "too", "during", "up", "just", "my", "can"]))


def stems(text: str) -> set[str]:
    """The terms BM25 sees (bm25s defaults: lower case, 2+ word chars, English stop words, Snowball stems)."""
    return set(_STEMMER.stemWords([t for t in _TOKEN.findall(text.lower()) if t not in _STOP]))


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, concept: Concept, formal: str, formal2: str, **extra: str) -> str:
    domain = DOMAINS[concept.domain]
    out = template.format(
        F=formal,
        F2=formal2,
        Experts=_upper_first(domain.experts),
        experts=domain.experts,
        expert=domain.expert,
        literature=domain.literature,
        caseload=domain.caseload,
        **extra,
    )
    return _upper_first(out)


def _pick_formal(rng: random.Random, concept: Concept) -> tuple[str, str]:
    """A primary and a different secondary formal term; the best-known synonym is the most frequent."""
    weights = [2 ** (len(concept.formal) - i) for i in range(len(concept.formal))]
    first = rng.choices(concept.formal, weights=weights)[0]
    second = rng.choice([f for f in concept.formal if f != first])
    return first, second


def _concept_documents(rng: random.Random, concept: Concept) -> list[tuple[str, str, str]]:
    """(facet, title, text) for the concept's four documents; ``LAY_MENTIONS_PER_CONCEPT`` of them also
    mention a lay phrase."""
    lay_facets = set(rng.sample(FACETS, LAY_MENTIONS_PER_CONCEPT))
    docs = []
    for facet in FACETS:
        formal, formal2 = _pick_formal(rng, concept)
        title = _fill(rng.choice(TITLES[facet]), concept, formal, formal2)
        sentences = [_fill(rng.choice(OPENINGS[facet]), concept, formal, formal2, fact=concept.fact(facet))]
        support = [rng.choice(SUPPORT), rng.choice(FACET_SUPPORT[facet])]
        rng.shuffle(support)
        sentences += [_fill(s, concept, formal, formal2) for s in support[: rng.randint(1, 2)]]
        if facet in lay_facets:
            mention = _fill(rng.choice(LAY_MENTIONS), concept, formal, formal2, L=rng.choice(concept.lay))
            sentences.insert(rng.randint(1, len(sentences)), mention)
        docs.append((facet, title, " ".join(sentences)))
    return docs


def _check_concept(concept: Concept, docs: list[tuple[str, str, str]]) -> None:
    """The vocabulary gap by construction: outside the lay-mention sentences no lay word appears in the
    concept's documents, and the distractor does share a lay word."""
    lay = set().union(*(stems(phrase) for phrase in concept.lay)) - set(concept.shared) - _FUNCTION_STEMS
    for facet, title, text in docs:
        for mention in LAY_MENTIONS:
            text = re.sub(re.escape(mention).replace(r"\{F\}", ".*?").replace(r"\{L\}", ".*?"), "", text)
        leaked = lay & stems(f"{title} {text}")
        if leaked:
            raise ValueError(
                f"concept {concept.key!r}, {facet} document uses lay words {sorted(leaked)}: {text!r}"
            )
    if not lay & stems(" ".join(concept.decoy)):
        raise ValueError(f"concept {concept.key!r}: the distractor shares no lay word {sorted(lay)}")


def build(seed: int = SEED) -> Collection:
    """Compose documents, queries, judgments and the train/test split from the inventory."""
    if len({c.key for c in CONCEPTS}) != len(CONCEPTS):
        raise ValueError("duplicate concept keys in the inventory")
    rng = random.Random(seed)
    raw_docs: list[tuple[str, str, str | None, str | None]] = []  # title, text, concept, facet
    raw_queries: list[tuple[str, str, str]] = []  # text, concept, facet
    seen_queries: set[str] = set()
    for concept in CONCEPTS:
        docs = _concept_documents(rng, concept)
        _check_concept(concept, docs)
        raw_docs += [(title, text, concept.key, facet) for facet, title, text in docs]
        raw_docs.append((*concept.decoy, None, None))
        for facet in FACETS:
            for _ in range(50):
                lay = rng.choice(concept.lay)
                templates = CLAUSE_QUERY_TEMPLATES if isinstance(lay, Clause) else NOUN_QUERY_TEMPLATES
                text = rng.choice(templates[facet]).format(L=lay)
                if text not in seen_queries:
                    break
            else:
                raise ValueError(f"cannot write a new {facet} query for {concept.key!r}")
            seen_queries.add(text)
            raw_queries.append((text, concept.key, facet))

    rng.shuffle(raw_docs)
    documents = [Document(f"d{i:04d}", t, x, c, f) for i, (t, x, c, f) in enumerate(raw_docs, start=1)]

    # Stratified split: every concept has test queries; a fraction of concepts has two.
    keys = [c.key for c in CONCEPTS]
    rng.shuffle(keys)
    per_concept = len(FACETS)
    n_two = round((TEST_FRACTION * per_concept - 1) * len(keys))
    test_count = {key: 2 if i < n_two else 1 for i, key in enumerate(keys)}
    test_facets = {key: set(rng.sample(FACETS, test_count[key])) for key in sorted(test_count)}
    rng.shuffle(raw_queries)
    queries = [
        Query(f"q{i:03d}", text, key, facet, "test" if facet in test_facets[key] else "train")
        for i, (text, key, facet) in enumerate(raw_queries, start=1)
    ]

    by_concept: dict[str, list[Document]] = {}
    for doc in documents:
        if doc.concept:
            by_concept.setdefault(doc.concept, []).append(doc)
    qrels = {q.id: {d.id: 2 if d.facet == q.facet else 1 for d in by_concept[q.concept]} for q in queries}
    return Collection(documents, queries, qrels)


# ---------------------------------------------------------------- measurement (for the README)


def oracle_expansion(query: Query, top: int | None = None) -> str:
    """The query followed by the concept's formal synonyms (all of them, or the ``top`` best known)."""
    formal = CONCEPT_BY_KEY[query.concept].formal
    return " ".join([query.text, *formal[:top]])


def measure_bm25(collection: Collection, split: str) -> dict[str, dict[str, float]]:
    """BM25 (k1=0.9, b=0.4) NDCG@10 / R@10 on ``split`` for the original and the expanded queries."""
    import ir_measures
    from ir_measures import R, nDCG

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    corpus = [f"{d.title} {d.text}" for d in collection.documents]
    retriever.index(
        bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False
    )
    queries = [q for q in collection.queries if q.split == split]
    qrels = [ir_measures.Qrel(q.id, d, g) for q in queries for d, g in collection.qrels[q.id].items()]
    variants = {
        "original": [q.text for q in queries],
        "oracle (all formal synonyms)": [oracle_expansion(q) for q in queries],
        "query + top-2 formal synonyms": [oracle_expansion(q, top=2) for q in queries],
    }
    results = {}
    for name, texts in variants.items():
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)
        docs, scores = retriever.retrieve(tokens, k=10, show_progress=False, n_threads=1)
        run = [
            ir_measures.ScoredDoc(q.id, collection.documents[int(j)].id, float(s))
            for q, row, srow in zip(queries, docs, scores, strict=True)
            for j, s in zip(row, srow, strict=True)
        ]
        agg = ir_measures.calc_aggregate([nDCG @ 10, R @ 10], qrels, run)
        results[name] = {"ndcg@10": agg[nDCG @ 10], "recall@10": agg[R @ 10]}
    return results


# ---------------------------------------------------------------- writing


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in records)


def _qrels_tsv(collection: Collection, split: str) -> str:
    lines = ["query-id\tcorpus-id\tscore"]
    for q in collection.queries:
        if q.split == split:
            lines += [f"{q.id}\t{d}\t{g}" for d, g in sorted(collection.qrels[q.id].items())]
    return "\n".join(lines) + "\n"


NUMBER_WORDS = {1: "One", 2: "Two", 3: "Three"}


def _readme(collection: Collection) -> str:
    docs, queries = collection.documents, collection.queries
    n_decoy = sum(d.concept is None for d in docs)
    n_train = sum(q.split == "train" for q in queries)
    n_test = len(queries) - n_train
    n_judged = {
        split: sum(len(collection.qrels[q.id]) for q in queries if q.split == split)
        for split in ("train", "test")
    }
    domains: dict[str, int] = {}
    for c in CONCEPTS:
        domains[c.domain] = domains.get(c.domain, 0) + 1
    rows = "\n".join(
        f"| {split} | {name} | {m['ndcg@10']:.3f} | {m['recall@10']:.3f} |"
        for split in ("test", "train")
        for name, m in measure_bm25(collection, split).items()
    )
    example = next(q for q in queries if q.split == "test")
    concept = CONCEPT_BY_KEY[example.concept]
    return f"""# Demo collection: the vocabulary gap

A small retrieval collection written entirely by this project (no third-party text) for the quickstart:
users ask in everyday words, documents answer in formal words, so a policy that rewrites queries with the
formal synonyms it knows (e.g. "heart attack" -> "myocardial infarction") retrieves far better than the
original query. BEIR layout, readable by the same loader as SciFact.

Generated by `scripts/build_demo_collection.py` (seed {SEED}); rerunning it reproduces these files byte for
byte, including the figures below. Do not edit by hand.

## How it was made

* A hand-written inventory of {len(CONCEPTS)} concepts across {len(domains)} domains
  ({", ".join(f"{d} {n}" for d, n in domains.items())}). Each concept has lay phrases (query side),
  formal synonyms (document side, best known first) and one formal fact for each facet: signs, causes,
  remedy, prevention.
* Each concept yields four documents, one per facet, composed from sentence templates with the formal terms.
  {NUMBER_WORDS[LAY_MENTIONS_PER_CONCEPT]} of the four also say what people call it (the lay phrase), so
  the original query is not hopeless; the generator verifies that no other sentence of a concept's
  documents contains one of its lay words (after stemming), except a few deliberate shared words
  (e.g. "brake", "credit").
* Each concept has one hand-written distractor document that uses its lay words in another sense
  ("flat" as an apartment, "shingles" on a roof, "cookies" in a browser).
* Each concept yields one lay query per facet from query templates. Judgments: the same-facet document is
  graded 2, the concept's three other documents 1; distractors are not relevant.
* Split by query, stratified by concept: every concept has one or two held-out test queries and its other
  queries in train (no query text appears twice). Test concepts are therefore also seen in training, with
  other facets and other wording.

Example (test): `{example.text}` -> formal synonyms: {", ".join(concept.formal)}.

## Counts

| file | count |
|---|---|
| corpus.jsonl | {len(docs)} documents ({len(docs) - n_decoy} concept documents, {n_decoy} distractors) |
| queries.jsonl | {len(queries)} queries |
| qrels/train.tsv | {n_train} queries, {n_judged["train"]} judgments |
| qrels/test.tsv | {n_test} queries, {n_judged["test"]} judgments |

## BM25 baseline

bm25s, k1={BM25_K1}, b={BM25_B}, English Snowball stemmer and English stop words, title + text indexed.
"Oracle" appends all formal synonyms of the query's concept from the inventory; "top-2" appends the two
best-known ones (a cheap stand-in for what an LLM rewrite could add).

| split | queries | NDCG@10 | R@10 |
|---|---|---|---|
{rows}
"""


def render(collection: Collection) -> dict[str, str]:
    """File name (relative to the demo folder) -> exact file content."""
    return {
        "corpus.jsonl": _jsonl(
            [{"_id": d.id, "title": d.title, "text": d.text} for d in collection.documents]
        ),
        "queries.jsonl": _jsonl([{"_id": q.id, "text": q.text} for q in collection.queries]),
        "qrels/train.tsv": _qrels_tsv(collection, "train"),
        "qrels/test.tsv": _qrels_tsv(collection, "test"),
        "README.md": _readme(collection),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder to write (default: %(default)s)"
    )
    parser.add_argument(
        "--check", action="store_true", help="only verify that the files in --out are current"
    )
    args = parser.parse_args(argv)
    files = render(build())
    if args.check:
        stale = [
            name
            for name, content in files.items()
            if not (args.out / name).is_file() or (args.out / name).read_text(encoding="utf-8") != content
        ]
        if stale:
            print(f"out of date in {args.out}: {', '.join(stale)}", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    for name, content in files.items():
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8", newline="\n")
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
